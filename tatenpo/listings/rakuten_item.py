"""楽天市場 normal-item.csv (the current SKU format): a product row, then one row per SKU.

A product row has an empty SKU管理番号; its SKU rows follow it (they may repeat or omit 商品管理番号). A product
row with no SKU rows is an item without variations: SKU `normal-inventory`. Any subset of columns works (a
stock-only file is `商品管理番号（商品URL）,SKU管理番号,在庫数`).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

from flask_babel import lazy_gettext as _l

from .base import Format, Overrides
from .reading import Columns, Table, cell
from .records import Problems, Record, read_quantity

ITEM = ("商品管理番号（商品URL）", "商品管理番号")
SKU = "SKU管理番号"
SYSTEM_SKU = "システム連携用SKU番号"
SINGLE_SKU = "normal-inventory"
LEGACY_CONTROL = ("コントロールカラム", "項目選択肢用コントロールカラム")


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    return columns.has(*ITEM) and not columns.has(*LEGACY_CONTROL) and not columns.has("在庫タイプ")


def sku_code(item: str, sku: str, system_sku: str) -> str:
    """PRODUCT.md: システム連携用SKU番号, else SKU管理番号, else 商品管理番号."""
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
    i_item = c.require(*ITEM)
    i_sku = c.find(SKU)
    i_system = c.find(SYSTEM_SKU)
    i_name = c.find("商品名")
    i_number = c.find("商品番号")
    i_quantity = c.find("在庫数")
    quantity_column = c.name(i_quantity)
    item_column = c.name(i_item)
    i_choices = [i for i in (c.find(f"バリエーション項目選択肢{n}") for n in range(1, 7)) if i is not None]
    overrides = Overrides(c)
    name = table.filename

    # The product row seen last, until we know whether SKU rows follow it.
    item: Optional[str] = None
    title = ""
    number = ""
    pending: Optional[tuple[int, list[str]]] = None

    def single_sku(row_no: int, row: list[str]) -> Record:
        manage = cell(row, i_item).strip()
        record = Record(
            row=row_no,
            item_code=manage.lower(),
            variant_code=SINGLE_SKU,
            code=sku_code(manage, "", cell(row, i_system).strip()),
            title=cell(row, i_name),
            quantity=read_quantity(cell(row, i_quantity), row_no, quantity_column, problems, name),
            attributes=_attributes(cell(row, i_number), cell(row, i_system).strip(), []),
            filename=name,
            keep_code=i_system is None,
        )
        return overrides.apply(record, row)

    for row_no, row in table.rows():
        manage = cell(row, i_item).strip()
        sku = cell(row, i_sku).strip()
        if not sku:
            if pending is not None:
                yield single_sku(*pending)
                pending = None
            if not manage:
                problems.add(row_no, item_column, _l("商品管理番号 is empty."), name)
                item = None
                continue
            item, title, number = manage, cell(row, i_name), cell(row, i_number)
            pending = (row_no, row)
            continue
        if not manage:
            if item is None:
                problems.add(row_no, item_column, _l("商品管理番号 is empty."), name)
                continue
            manage = item
        elif manage != item:
            if pending is not None:
                yield single_sku(*pending)
            # A SKU row without its product row (a stock-only file): it carries its own fields.
            item, title, number = manage, cell(row, i_name), cell(row, i_number)
        pending = None
        system_sku = cell(row, i_system).strip()
        choices = [cell(row, i).strip() for i in i_choices]
        choices = [value for value in choices if value]
        record = Record(
            row=row_no,
            item_code=manage.lower(),
            variant_code=sku,
            code=sku_code(manage, sku, system_sku),
            title=f"{title} {' / '.join(choices)}".strip() if choices else title,
            quantity=read_quantity(cell(row, i_quantity), row_no, quantity_column, problems, name),
            attributes=_attributes(number, system_sku, choices),
            filename=name,
            keep_code=i_system is None,
        )
        yield overrides.apply(record, row)
    if pending is not None:
        yield single_sku(*pending)


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
