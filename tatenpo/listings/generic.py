"""Any other CSV: the shop maps its columns once per store, and the mapping is remembered in
Store.settings["generic_csv"] = {"item_code": header, "variant_code": …, "code": …, "title": …, "quantity": …}.
Only item_code is required; code defaults to the variant code, else the item code."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask_babel import lazy_gettext as _l

from tatenpo.listings.base import Format, Overrides
from tatenpo.listings.reading import Columns, FileProblem, Table, cell
from tatenpo.listings.records import Problems, Record, read_quantity
from tatenpo.malls import keys as mall_keys

SETTINGS_KEY = "generic_csv"
FIELDS = ("item_code", "variant_code", "code", "title", "quantity")
FIELD_LABELS = {
    "item_code": _l("Item code (required)"),
    "variant_code": _l("Variant code"),
    "code": _l("Listing code (SKU)"),
    "title": _l("Title"),
    "quantity": _l("Stock"),
}


def mapping(settings: dict[str, Any]) -> dict[str, str]:
    saved = settings.get(SETTINGS_KEY) or {}
    return {field: saved[field] for field in FIELDS if saved.get(field)}


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    saved = mapping(settings)
    return bool(saved.get("item_code")) and all(columns.has(header) for header in saved.values())


def read(tables: list[Table], problems: Problems, settings: dict[str, Any]) -> Iterator[Record]:
    saved = mapping(settings)
    if not saved.get("item_code"):
        raise FileProblem(
            _l("Map the columns of this CSV first (which column is the item code, the stock, …)."), unrecognised=True
        )
    for table in tables:
        c = table.columns
        positions = {field: c.require(header) for field, header in saved.items()}
        overrides = Overrides(c)
        for row_no, row in table.rows(columns=[*positions.values(), overrides.product, overrides.sell]):
            item = cell(row, positions["item_code"]).strip()
            if not item:
                problems.add(row_no, saved["item_code"], _l("The item code is empty."), table.filename)
                continue
            variant = cell(row, positions.get("variant_code")).strip()
            code = cell(row, positions.get("code")).strip() or variant or item
            record = Record(
                row=row_no,
                item_code=item,
                variant_code=variant,
                code=code,
                title=cell(row, positions.get("title")),
                quantity=read_quantity(
                    cell(row, positions.get("quantity")), row_no, saved.get("quantity", ""), problems, table.filename
                ),
                attributes={},
                filename=table.filename,
            )
            yield overrides.apply(record, row)


FORMAT = Format(
    name="generic",
    label=_l("Other CSV (columns mapped by you)"),
    malls=tuple(mall_keys()),  # any mall: the shop maps the columns
    matches=matches,
    read=read,
)
