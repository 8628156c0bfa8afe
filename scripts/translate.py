"""Refresh the message catalogs and fill Japanese (and optional English) translations.

    .venv/bin/python scripts/translate.py              # extract ids from the code, update ja and en catalogs
    .venv/bin/python scripts/translate.py ja.tsv       # also fill ja from "English id<TAB>日本語" lines

English ids live in the code; Japanese is the default locale. Untranslated ids are listed at the end.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "tatenpo" / "translations"
POT = TRANSLATIONS / "messages.pot"
BIN = Path(sys.executable).parent


def run(*args: str) -> None:
    subprocess.run([str(BIN / "pybabel"), *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def refresh() -> None:
    run("extract", "-F", "babel.cfg", "-k", "_l", "--no-location", "--sort-output", "--no-wrap", "-o", str(POT), ".")
    for locale in ("ja", "en"):
        if (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").exists():
            run("update", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", locale, "--no-fuzzy-matching", "--ignore-obsolete", "--no-wrap")
        else:
            run("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", locale, "--no-wrap")


def fill(locale: str, tsv: Path) -> None:
    po_path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    for line in tsv.read_text(encoding="utf-8").splitlines():
        if not line.strip() or "\t" not in line:
            continue
        msgid, msgstr = line.split("\t", 1)
        msgid = msgid.replace("\\n", "\n")
        msgstr = msgstr.replace("\\n", "\n")
        message = catalog.get(msgid)
        if message is None:
            print(f"not in the code (skipped): {msgid}", file=sys.stderr)
            continue
        message.string = msgstr
    with po_path.open("wb") as handle:
        write_po(handle, catalog, no_location=True, sort_output=True, width=0)


def missing(locale: str) -> list[str]:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    return [m.id for m in catalog if m.id and not m.string]


if __name__ == "__main__":
    refresh()
    if len(sys.argv) > 1:
        fill("ja", Path(sys.argv[1]))
    left = missing("ja")
    if left:
        print(f"{len(left)} ids have no Japanese yet:")
        for msgid in left:
            print("  " + (msgid if isinstance(msgid, str) else msgid[0]))
