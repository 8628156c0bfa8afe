# Two commands matter: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test test-prerequisites translations migration clean-venv

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# Compiled catalogs are build output (git-ignored), compiled when missing or older than their .po: never
# rewritten while another `make test` reads them (.ci/run runs two at once).
CATALOGS := $(wildcard tatenpo/translations/*/LC_MESSAGES/messages.po)
translations: $(CATALOGS:.po=.mo)

%.mo: %.po $(BIN)/.installed
	$(BIN)/pybabel compile --use-fuzzy --statistics -i $< -o $@.tmp 2>&1 | grep -v '^$$' || true
	mv $@.tmp $@

run: $(BIN)/.installed translations
	$(BIN)/python -m tatenpo.platform.launcher

# chromium and a Japanese font for the browser tests: installed when root with apt-get, else the command to run.
test-prerequisites:
	scripts/test_prerequisites.sh

test: test-prerequisites $(BIN)/.installed translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# make migration m="add listing maximum"
migration: $(BIN)/.installed
	$(BIN)/flask --app app db migrate -m "$(m)"

clean-venv:
	rm -rf $(VENV)
