"""Which mall file a CSV is, from its header row (the user may force a format instead)."""
from __future__ import annotations

from typing import Any, Optional

from flask_babel import lazy_gettext as _l

from tatenpo.listings import (
    amazon,
    generic,
    rakuten_item,
    rakuten_legacy,
    shopify_inventory,
    shopify_products,
    yahoo_data,
    yahoo_quantity,
)
from tatenpo.listings.base import Format
from tatenpo.listings.reading import FileProblem, Table

# Order matters: the more specific header sets first; the shop's own mapping last.
FORMATS: list[Format] = [
    rakuten_legacy.FORMAT,
    rakuten_item.FORMAT,
    yahoo_quantity.FORMAT,
    yahoo_data.FORMAT,
    amazon.FORMAT,
    shopify_inventory.FORMAT,
    shopify_products.FORMAT,
    generic.FORMAT,
]
BY_NAME = {f.name: f for f in FORMATS}


def get(name: str) -> Format:
    try:
        return BY_NAME[name]
    except KeyError:
        raise FileProblem(
            _l("Unknown format “%(name)s”. Known formats: %(names)s.", name=name, names=", ".join(BY_NAME))
        ) from None


def detect(tables: list[Table], settings: dict[str, Any], forced: Optional[str] = None) -> Format:
    """The one format all files share, or FileProblem saying the file was not recognised."""
    if forced:
        chosen = get(forced)
        if len(tables) > 1 and not chosen.multi_file:
            raise FileProblem(_l("Upload one file at a time for this format."))
        return chosen
    found: Optional[Format] = None
    for table in tables:
        match = next((f for f in FORMATS if f.matches(table.columns, settings)), None)
        if match is None and table.columns.has_all("商品コード", "在庫数"):
            raise FileProblem(
                _l("This is a stock CSV (商品コード, 在庫数), not a mall's listing file: import it under 在庫取込."),
                row=1,
            )
        if match is None:
            raise FileProblem(
                _l(
                    "“%(file)s” is not a mall file we recognise (its first columns: %(headers)s). "
                    "Choose the format, or map its columns as an other CSV.",
                    file=table.filename,
                    headers=", ".join(table.headers[:5]),
                ),
                row=1,
                unrecognised=True,
            )
        if found is not None and match is not found:
            raise FileProblem(_l("The files are of different formats; upload them one at a time."))
        found = match
    if found is None:
        raise FileProblem(_l("Choose a CSV file to upload."))
    if len(tables) > 1 and not found.multi_file:
        raise FileProblem(_l("Upload one file at a time for this format."))
    return found
