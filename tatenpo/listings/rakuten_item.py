"""楽天市場 normal-item.csv (the current SKU format): a product row, then one row per SKU.

A product row has an empty SKU管理番号; its SKU rows follow it (they may repeat or omit 商品管理番号). A product
row with no SKU rows is an item without variations: SKU `normal-inventory`. Any subset of columns works (a
stock-only file is `商品管理番号（商品URL）,SKU管理番号,在庫数`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any, Optional

from flask_babel import lazy_gettext as _l

from tatenpo.listings.base import Format, Overrides
from tatenpo.listings.reading import Columns, Table
from tatenpo.listings.records import Problems, Record, read_quantity
from tatenpo.stock.inventory import MAX_QUANTITY

ITEM = ("商品管理番号（商品URL）", "商品管理番号")
SKU = "SKU管理番号"
SYSTEM_SKU = "システム連携用SKU番号"
SINGLE_SKU = "normal-inventory"
LEGACY_CONTROL = ("コントロールカラム", "項目選択肢用コントロールカラム")
# A stock of this many ASCII digits or fewer is within MAX_QUANTITY: read without read_quantity's checks.
_DIGITS = len(str(MAX_QUANTITY)) - 1


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    return columns.has(*ITEM) and not columns.has(*LEGACY_CONTROL) and not columns.has("在庫タイプ")


def sku_code(item: str, sku: str, system_sku: str) -> str:
    """The linking rule (listings/linking.py): システム連携用SKU番号, else SKU管理番号, else 商品管理番号."""
    if system_sku:
        return system_sku
    if sku and sku != SINGLE_SKU:
        return sku
    return item


def read(tables: list[Table], problems: Problems, settings: dict[str, Any]) -> Iterator[Record]:
    for table in tables:
        yield from _read_table(table, problems)


def _read_table(table: Table, problems: Problems) -> Iterator[Record]:
    c = table.columns
    c.require(*ITEM)
    # Every column as an index into the padded row (an absent column reads as the blank last cell).
    i_item, i_sku, i_system = c.at(*ITEM), c.at(SKU), c.at(SYSTEM_SKU)
    i_name, i_number, i_quantity = c.at("商品名"), c.at("商品番号"), c.at("在庫数")
    keep_code = not c.has(SYSTEM_SKU)
    quantity_column = c.name(c.find("在庫数"))
    item_column = c.name(c.find(*ITEM))
    i_choices = [i for i in (c.find(f"バリエーション項目選択肢{n}") for n in range(1, 7)) if i is not None]
    pick_choices = _picker(i_choices)
    overrides = Overrides(c)
    name = table.filename
    # The columns read: only their cells are decoded (Table.rows), the descriptions and images never are.
    read_columns = [i_item, i_sku, i_system, i_name, i_number, i_quantity, *i_choices, overrides.product,
                    overrides.sell]

    # The product row seen last, until we know whether SKU rows follow it; `item_key` is its 商品管理番号 as
    # stored (lowercase), `number` its 商品番号 (stripped).
    item: Optional[str] = None
    item_key = ""
    title = ""
    number = ""
    pending: Optional[tuple[int, list[str]]] = None

    def quantity_of(row_no: int, text: str) -> Optional[int]:
        return read_quantity(text, row_no, quantity_column, problems, name)

    def single_sku(row_no: int, row: list[str]) -> Record:
        manage = row[i_item].strip()
        system_sku = row[i_system].strip()
        record = Record(
            row=row_no,
            item_code=manage.lower(),
            variant_code=SINGLE_SKU,
            code=sku_code(manage, "", system_sku),
            title=row[i_name],
            quantity=quantity_of(row_no, row[i_quantity]),
            attributes=_attributes(row[i_number], system_sku, []),
            filename=name,
            keep_code=keep_code,
        )
        return overrides.apply(record, row)

    for row_no, row in table.rows(columns=read_columns):
        manage = row[i_item].strip()
        sku = row[i_sku].strip()
        if not sku:
            if pending is not None:
                yield single_sku(*pending)
                pending = None
            if not manage:
                problems.add(row_no, item_column, _l("商品管理番号 is empty."), name)
                item = None
                continue
            item, item_key, title, number = manage, manage.lower(), row[i_name], row[i_number].strip()
            pending = (row_no, row)
            continue
        # The SKU rows are most of a file: what follows is written for speed (read_quantity's common case
        # inline, the Record's fields in order, the product row's values worked out once).
        if not manage:
            if item is None:
                problems.add(row_no, item_column, _l("商品管理番号 is empty."), name)
                continue
            manage = item
        elif manage != item and (item is None or manage.lower() != item_key):
            # Another item: RMS treats 商品管理番号 case-insensitively (the product row's own text, the common
            # case, is the same item without lower()).
            if pending is not None:
                yield single_sku(*pending)
            # A SKU row without its product row (a stock-only file): it carries its own fields.
            item, item_key, title, number = manage, manage.lower(), row[i_name], row[i_number].strip()
        pending = None
        system_sku = row[i_system].strip()
        choices = [value.strip() for value in pick_choices(row) if value]
        if "" in choices:  # a cell of spaces
            choices = [value for value in choices if value]
        attributes = {"item_number": number} if number else {}  # 商品番号
        if system_sku:
            attributes["system_sku"] = system_sku  # システム連携用SKU番号
        if choices:
            attributes["choices"] = choices
        text = row[i_quantity]
        if len(text) <= _DIGITS and text.isdigit() and text.isascii():
            quantity: Optional[int] = int(text)
        else:
            quantity = quantity_of(row_no, text)
        record = Record(
            row_no, item_key, sku, system_sku or (sku if sku != SINGLE_SKU else manage),
            f"{title} {' / '.join(choices)}".strip() if choices else title, quantity, attributes,
            "", "", True, name, keep_code,
        )
        yield overrides.apply(record, row) if overrides.any else record
    if pending is not None:
        yield single_sku(*pending)


def _picker(positions: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The cells at `positions` of a row, as a tuple (itemgetter's, whatever the number of positions)."""
    if len(positions) == 1:
        position = positions[0]
        return lambda row: (row[position],)
    return itemgetter(*positions) if positions else lambda row: ()


def _attributes(number: str, system_sku: str, choices: list[str]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if number.strip():
        attributes["item_number"] = number.strip()  # 商品番号
    if system_sku:
        attributes["system_sku"] = system_sku  # システム連携用SKU番号
    if choices:
        attributes["choices"] = choices
    return attributes


FORMAT = Format(
    name="rakuten-item",
    label=_l("Rakuten normal-item.csv (SKU format)"),
    malls=("rakuten", "rakuten-ftp"),
    matches=matches,
    read=read,
)
