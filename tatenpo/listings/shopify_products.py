"""Shopify products export (UTF-8, one row per variant grouped by its handle).

Two layouts are read alike [Shopify help, "Using CSV files to import and export products",
help.shopify.com/en/manual/products/import-export/using-csv; docs/malls/shopify.md]: today's export names its
columns `URL handle`, `SKU`, `Option1 name`, `Option1 value`, `Price`, `Inventory quantity`, `Inventory
tracker`; exports made before 2024 `Handle`, `Variant SKU`, `Option1 Name`, `Option1 Value`, `Variant Price`,
`Variant Inventory Qty`, `Variant Inventory Tracker`. Only a product's first row carries Title and the option
names; the other variant rows leave them empty. Rows with no variant fields are extra images. The export has no inventory item ids, so a listing is identified as
the Shopify connector expects (tatenpo.malls.shopify): item_code = the inventory item id when the file has one
(`Variant Inventory Item ID`), else the `Variant SKU`, which the connector looks up; variant_code = the location
('' = the shop's first location). When Variant SKU is empty (often), Handle + option values stand in for it.
Handle and option values are kept in attributes.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask_babel import lazy_gettext as _l

from tatenpo.listings.base import Format, Overrides
from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.listings.records import Problems, Record, read_quantity

DEFAULT_OPTION = "Default Title"

# Each column as today's export names it, then as older exports did.
HANDLE = ("URL handle", "Handle")
SKU = ("SKU", "Variant SKU")
PRICE = ("Price", "Variant Price")
QUANTITY = ("Inventory quantity", "Variant Inventory Qty")
TRACKER = ("Inventory tracker", "Variant Inventory Tracker")


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    if columns.has("URL handle"):
        return columns.has(*SKU, *PRICE, *QUANTITY)
    # The older layout: "Handle" alone is also the inventory export's, which has no Variant columns.
    return columns.has("Handle") and columns.has("Variant SKU", "Variant Price", "Variant Inventory Qty")


def variant_key(values: list[str]) -> str:
    values = [v.strip() for v in values if v.strip() and v.strip() != DEFAULT_OPTION]
    return " / ".join(values)


def fallback_code(handle: str, values: list[str]) -> str:
    values = [v.strip() for v in values if v.strip() and v.strip() != DEFAULT_OPTION]
    return "-".join([handle, *values])


def read(tables: list[Table], problems: Problems, settings: dict[str, Any]) -> Iterator[Record]:
    for table in tables:
        c = table.columns
        i_handle = c.require(*HANDLE)
        i_title = c.find("Title")
        i_options = [c.find(f"Option{n} Value") for n in (1, 2, 3)]  # headers compare case-insensitively
        i_sku = c.find(*SKU)
        i_quantity = c.find(*QUANTITY)
        quantity_column = table.headers[i_quantity] if i_quantity is not None else QUANTITY[0]
        i_price = c.find(*PRICE)
        i_tracker = c.find(*TRACKER)
        i_item_id = c.find("Variant Inventory Item ID", "Inventory Item ID")
        overrides = Overrides(c)
        titles: dict[str, str] = {}
        read_columns = [i_handle, i_title, *i_options, i_sku, i_quantity, i_price, i_tracker, i_item_id,
                        overrides.product, overrides.sell]
        for row_no, row in table.rows(columns=read_columns):
            handle = cell(row, i_handle).strip()
            if not handle:
                problems.add(row_no, "Handle", _l("Handle is empty."), table.filename)
                continue
            title = cell(row, i_title)
            if title:
                titles.setdefault(handle, title)
            values = [cell(row, i) for i in i_options]
            sku = cell(row, i_sku).strip()
            if not sku and not any(v.strip() for v in values) and not cell(row, i_price).strip():
                problems.skip(_l("Image rows of the Shopify export"))
                continue
            extra: dict[str, Any] = {}
            if cell(row, i_item_id).strip():
                extra["inventory_item_id"] = cell(row, i_item_id).strip()
            if i_tracker is not None and not cell(row, i_tracker).strip():
                extra["untracked"] = True
            quantity = read_quantity(cell(row, i_quantity), row_no, quantity_column, problems, table.filename)
            record = variant_record(row_no, handle, titles.get(handle, handle), values, sku, quantity, extra, table.filename)
            yield overrides.apply(record, row)


def variant_record(row_no: int, handle: str, name: str, values: list[str], sku: str, quantity, extra: dict[str, Any],
                   filename: str) -> Record:
    """One Shopify variant as a listing (shared by the products and the inventory export)."""
    key = variant_key(values)
    code = sku or fallback_code(handle, values)
    attributes: dict[str, Any] = {"handle": handle}
    if sku:
        attributes["sku"] = sku
    if key:
        attributes["options"] = key
    attributes.update(extra)
    return Record(
        row=row_no,
        item_code=attributes.get("inventory_item_id") or code,
        variant_code="",
        code=code,
        title=f"{name} {key}".strip() if key else name,
        quantity=quantity,
        attributes=attributes,
        filename=filename,
    )


FORMAT = Format(
    name="shopify-products",
    label=_l("Shopify products CSV"),
    malls=("shopify",),
    matches=matches,
    read=read,
)
