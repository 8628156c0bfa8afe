"""Yahoo!ショッピング quantity.csv (stock): `code,name,sub-code,quantity,allow-overdraft,stock-close`
(`name` may be absent; `sub-code` empty for items without one; a `mode` column of +/- means the quantity is a
change, not a stock, which cannot be imported as one)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask_babel import lazy_gettext as _l

from tatenpo.listings.base import Format, Overrides
from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.listings.records import Problems, Record, read_quantity
from tatenpo.listings.yahoo_data import listing_code


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    return columns.has_all("code", "quantity") and not columns.has("price", "path")


def read(tables: list[Table], problems: Problems, settings: dict[str, Any]) -> Iterator[Record]:
    for table in tables:
        c = table.columns
        i_code = c.require("code")
        i_quantity = c.require("quantity")
        i_sub = c.find("sub-code")
        i_name = c.find("name")
        i_mode = c.find("mode")
        i_overdraft = c.find("allow-overdraft")
        overrides = Overrides(c)
        records: list[Record] = []
        with_subs: set[str] = set()
        read_columns = [i_code, i_quantity, i_sub, i_name, i_mode, i_overdraft, overrides.product, overrides.sell]
        for row_no, row in table.rows(columns=read_columns):
            code = cell(row, i_code).strip()
            if not code:
                problems.add(row_no, "code", _l("The item code (code) is empty."), table.filename)
                continue
            if cell(row, i_mode).strip() in ("+", "-"):
                problems.add(
                    row_no, "mode",
                    _l("mode “+” or “-” makes quantity a change, not a stock; export without mode."), table.filename,
                )
                continue
            sub_code = cell(row, i_sub).strip()
            if sub_code:
                with_subs.add(code)
            attributes = {}
            if cell(row, i_overdraft).strip() == "1":
                attributes["allow_overdraft"] = True
            records.append(
                overrides.apply(
                    Record(
                        row=row_no,
                        item_code=code,
                        variant_code=sub_code,
                        code=listing_code(code, sub_code),
                        title=cell(row, i_name),
                        quantity=read_quantity(cell(row, i_quantity), row_no, "quantity", problems, table.filename),
                        attributes=attributes,
                        filename=table.filename,
                    ),
                    row,
                )
            )
        for record in records:
            # An item's own row next to its sub-code rows holds no stock of its own.
            if not record.variant_code and record.item_code in with_subs:
                problems.skip(_l("Item rows of items that have sub-codes"))
                continue
            yield record


FORMAT = Format(
    name="yahoo-quantity",
    label=_l("Yahoo! Shopping quantity.csv (stock)"),
    malls=("yahoo",),
    matches=matches,
    read=read,
)
