# Two commands matter: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test translations migration clean-venv

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# Compiled catalogs are build output (git-ignored); recompiled whenever a .po changes.
translations: $(BIN)/.installed
	$(BIN)/pybabel compile --use-fuzzy --statistics -d tatenpo/translations 2>&1 | grep -v '^$$' || true

run: $(BIN)/.installed translations
	$(BIN)/python -m tatenpo.platform.launcher

test: $(BIN)/.installed translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# make migration m="add listing maximum"
migration: $(BIN)/.installed
	$(BIN)/flask --app app db migrate -m "$(m)"

clean-venv:
	rm -rf $(VENV)
