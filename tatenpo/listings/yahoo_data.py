"""Yahoo!ショッピング data.csv (item data; exact half-width headers `code`, `name`, `price`, `sub-code`, …).

`sub-code` either holds one sub-code per row, or Yahoo's option map for the whole item:
`カラー:赤#サイズ:S=red-s&カラー:赤#サイズ:M=red-m` (one listing per sub-code). data.csv carries no stock
unless a `quantity` column was added; quantity.csv is the stock file.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask_babel import lazy_gettext as _l

from tatenpo.listings.base import Format, Overrides
from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.listings.records import Problems, Record, read_quantity


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    return columns.has_all("code", "name") and columns.has("price", "path", "original-price", "sub-code") and not (
        columns.has("quantity") and not columns.has("price", "path")
    )


def listing_code(code: str, sub_code: str) -> str:
    """The linking rule (listings/linking.py): Yahoo links on code[:sub-code] — the SKU-level code, i.e. the sub-code when the item has
    one, else the item code. (The sub-code alone, not `code:sub-code`, is what the shop uses as its SKU code on
    the other malls, so the same goods link to one product.)"""
    return sub_code or code


def parse_sub_codes(text: str) -> list[tuple[str, str]]:
    """`カラー:赤#サイズ:S=red-s&…` → [('カラー:赤 / サイズ:S', 'red-s'), …]; a plain value → [('', value)]."""
    text = text.strip()
    if "=" not in text:
        return [("", text)] if text else []
    pairs = []
    for part in text.split("&"):
        options, _, sub_code = part.rpartition("=")
        if sub_code.strip():
            pairs.append((" / ".join(o for o in options.split("#") if o), sub_code.strip()))
    return pairs


def read(tables: list[Table], problems: Problems, settings: dict[str, Any]) -> Iterator[Record]:
    for table in tables:
        c = table.columns
        i_code = c.require("code")
        i_name = c.find("name")
        i_sub = c.find("sub-code")
        i_quantity = c.find("quantity")
        overrides = Overrides(c)
        read_columns = [i_code, i_name, i_sub, i_quantity, overrides.product, overrides.sell]
        for row_no, row in table.rows(columns=read_columns):
            code = cell(row, i_code).strip()
            if not code:
                problems.add(row_no, "code", _l("The item code (code) is empty."), table.filename)
                continue
            title = cell(row, i_name)
            subs = parse_sub_codes(cell(row, i_sub))
            quantity = read_quantity(cell(row, i_quantity), row_no, "quantity", problems, table.filename)
            if not subs:
                subs = [("", "")]
            for options, sub_code in subs:
                attributes = {"options": options} if options else {}
                record = Record(
                    row=row_no,
                    item_code=code,
                    variant_code=sub_code,
                    code=listing_code(code, sub_code),
                    title=f"{title} {options}".strip() if options else title,
                    quantity=quantity if len(subs) == 1 else None,
                    attributes=attributes,
                    filename=table.filename,
                )
                yield overrides.apply(record, row)


FORMAT = Format(
    name="yahoo-data",
    label=_l("Yahoo! Shopping data.csv (items)"),
    malls=("yahoo",),
    matches=matches,
    read=read,
)
