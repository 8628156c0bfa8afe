"""Shopify inventory export: one row per variant and location.

Headers changed over time: today `Available (not editable)`, `On hand (current)`, `On hand (new)`; older files
`Available`, `On hand`; the oldest have no Location column and one quantity column named after each location.
A value may be `Not stocked`. Listings share the products CSV's identity (the SKU, see shopify_products), so
either file updates the same listings. The file names locations, not their ids: the location read is the
store's `shopify_location` setting, else the first location in the file (rows of other locations are skipped
and counted); its name is kept in attributes and the connector pushes to the shop's first location.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

from flask_babel import lazy_gettext as _l

from tatenpo.listings.base import Format, Overrides
from tatenpo.listings.reading import Columns, Table, cell, header_key
from tatenpo.listings.records import Problems, Record, read_quantity
from tatenpo.listings.shopify_products import variant_record

AVAILABLE = ("Available (not editable)", "Available")
ON_HAND = ("On hand (current)", "On hand")
# Columns that are never a location's quantity in the oldest layout.
_KNOWN = {
    header_key(n)
    for n in (
        "Handle", "Title", "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value", "Option3 Name",
        "Option3 Value", "SKU", "HS Code", "COO", "Location", "Bin name", "Incoming (not editable)",
        "Unavailable (not editable)", "Committed (not editable)", "Available (not editable)", "On hand (current)",
        "On hand (new)", "Incoming", "Unavailable", "Committed", "Available", "On hand", "Barcode",
        "system-product-code", "system-sell-code",
    )
}
NOT_STOCKED = "not stocked"


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    if not columns.has("Handle") or columns.has("Variant SKU", "Variant Price"):
        return False
    return columns.has("Location", *AVAILABLE, *ON_HAND) or columns.has("SKU")


def read(tables: list[Table], problems: Problems, settings: dict[str, Any]) -> Iterator[Record]:
    wanted: Optional[str] = (settings.get("shopify_location") or "").strip() or None
    for table in tables:
        c = table.columns
        i_handle = c.require("Handle")
        i_title = c.find("Title")
        i_options = [c.find(f"Option{n} Value") for n in (1, 2, 3)]
        i_sku = c.find("SKU")
        i_location = c.find("Location")
        i_quantity = c.find(*AVAILABLE) if c.has(*AVAILABLE) else c.find(*ON_HAND)
        location_columns: list[int] = []
        if i_location is None and i_quantity is None:
            location_columns = [i for i, h in enumerate(c.headers) if header_key(h) not in _KNOWN and h.strip()]
            if not location_columns:
                c.require("Available (not editable)")
        overrides = Overrides(c)
        titles: dict[str, str] = {}
        read_columns = [i_handle, i_title, *i_options, i_sku, i_location, i_quantity, *location_columns,
                        overrides.product, overrides.sell]
        for row_no, row in table.rows(columns=read_columns):
            handle = cell(row, i_handle).strip()
            if not handle:
                problems.add(row_no, "Handle", _l("Handle is empty."), table.filename)
                continue
            if cell(row, i_title):
                titles.setdefault(handle, cell(row, i_title))
            if location_columns:
                choices = [(c.headers[i], i) for i in location_columns]
            else:
                choices = [(cell(row, i_location).strip(), i_quantity)]
            chosen = None
            for location, position in choices:
                if wanted is None:
                    wanted = location
                if location == wanted:
                    chosen = (location, position)
            if chosen is None:
                problems.skip(_l("Rows of other Shopify locations"))
                continue
            location, position = chosen
            values = [cell(row, i) for i in i_options]
            raw = cell(row, position).strip()
            extra: dict[str, Any] = {"location": location} if location else {}
            if raw.lower() == NOT_STOCKED:
                extra["not_stocked"] = True
                quantity = None
            else:
                quantity = read_quantity(raw, row_no, c.name(position), problems, table.filename)
            record = variant_record(row_no, handle, titles.get(handle, handle), values, cell(row, i_sku).strip(),
                                    quantity, extra, table.filename)
            yield overrides.apply(record, row)


FORMAT = Format(
    name="shopify-inventory",
    label=_l("Shopify inventory CSV"),
    malls=("shopify",),
    matches=matches,
    read=read,
)
