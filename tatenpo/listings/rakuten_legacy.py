"""楽天市場 legacy item.csv + select.csv (downloads: dl-item.csv, dl-select.csv), read together or alone.

item.csv: 在庫タイプ 1 keeps the stock in 在庫数 (one SKU, `normal-inventory`); 2 keeps it per choice in
select.csv, whose rows of 選択肢タイプ `i` are the SKUs: 商品管理番号 + 横軸子番号 + 縦軸子番号. Real downloads
often leave the 子番号 empty; then the choice names tell the SKUs apart (placeholders such as ' ' or '<br>'
count as empty). Rows whose control column says `d` (delete) are skipped.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask_babel import lazy_gettext as _l

from tatenpo.listings.base import Format, Overrides, blank
from tatenpo.listings.rakuten_item import ITEM, SINGLE_SKU
from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.listings.records import Problems, Record, read_quantity

ITEM_CONTROL = "コントロールカラム"
SELECT_CONTROL = "項目選択肢用コントロールカラム"
STOCK_TYPE = "在庫タイプ"


def is_select(columns: Columns) -> bool:
    return columns.has(SELECT_CONTROL) or (
        columns.has(*ITEM) and columns.has("項目選択肢別在庫用在庫数", "項目選択肢別在庫用横軸選択肢")
    )


def is_item(columns: Columns) -> bool:
    return columns.has(*ITEM) and (columns.has(ITEM_CONTROL) or columns.has(STOCK_TYPE)) and not is_select(columns)


def matches(columns: Columns, settings: dict[str, Any]) -> bool:
    return is_select(columns) or is_item(columns)


def read(tables: list[Table], problems: Problems, settings: dict[str, Any]) -> Iterator[Record]:
    items = [t for t in tables if not is_select(t.columns)]
    selects = [t for t in tables if is_select(t.columns)]
    known: dict[str, tuple[str, str]] = {}  # 商品管理番号 → (商品名, 商品番号)
    per_choice: dict[str, int] = {}  # items whose stock is in select.csv → their item.csv row
    for table in items:
        yield from _read_items(table, problems, known, per_choice)
    with_choices: set[str] = set()
    for table in selects:
        yield from _read_selects(table, problems, known, with_choices)
    for manage in per_choice:
        if manage not in with_choices:
            problems.skip(_l("在庫タイプ 2 (stock per choice) without select.csv rows: upload select.csv together."))


def _deleted(value: str) -> bool:
    return value.strip().lower() == "d"


def _read_items(table: Table, problems: Problems, known: dict, per_choice: dict) -> Iterator[Record]:
    c = table.columns
    i_item = c.require(*ITEM)
    i_control = c.find(ITEM_CONTROL)
    i_type = c.find(STOCK_TYPE)
    i_quantity = c.find("在庫数")
    i_name = c.find("商品名")
    i_number = c.find("商品番号")
    overrides = Overrides(c)
    read_columns = [i_item, i_control, i_type, i_quantity, i_name, i_number, overrides.product, overrides.sell]
    for row_no, row in table.rows(columns=read_columns):
        if _deleted(cell(row, i_control)):
            problems.skip(_l("Rows marked d (delete) in the control column"))
            continue
        manage = cell(row, i_item).strip()
        if not manage:
            problems.add(row_no, c.name(i_item), _l("商品管理番号 is empty."), table.filename)
            continue
        title, number = cell(row, i_name), cell(row, i_number).strip()
        known[manage.lower()] = (title, number)
        stock_type = cell(row, i_type).strip()
        if stock_type == "2":
            per_choice[manage.lower()] = row_no
            continue
        if stock_type not in ("", "1"):
            problems.skip(_l("Items whose 在庫タイプ is not stock-managed"))
            continue
        record = Record(
            row=row_no,
            item_code=manage.lower(),
            variant_code=SINGLE_SKU,
            code=manage,
            title=title,
            quantity=read_quantity(cell(row, i_quantity), row_no, c.name(i_quantity), problems, table.filename),
            attributes={"item_number": number} if number else {},
            filename=table.filename,
        )
        yield overrides.apply(record, row)


def _read_selects(table: Table, problems: Problems, known: dict, with_choices: set[str]) -> Iterator[Record]:
    c = table.columns
    i_item = c.require(*ITEM)
    i_control = c.find(SELECT_CONTROL)
    i_type = c.find("選択肢タイプ")
    i_h = c.find("項目選択肢別在庫用横軸選択肢")
    i_h_no = c.find("項目選択肢別在庫用横軸選択肢子番号")
    i_v = c.find("項目選択肢別在庫用縦軸選択肢")
    i_v_no = c.find("項目選択肢別在庫用縦軸選択肢子番号")
    i_quantity = c.find("項目選択肢別在庫用在庫数")
    overrides = Overrides(c)
    read_columns = [i_item, i_control, i_type, i_h, i_h_no, i_v, i_v_no, i_quantity, overrides.product, overrides.sell]
    for row_no, row in table.rows(columns=read_columns):
        if _deleted(cell(row, i_control)):
            problems.skip(_l("Rows marked d (delete) in the control column"))
            continue
        choice_type = cell(row, i_type).strip().lower()
        if i_type is not None and choice_type != "i":
            # s/c rows are select boxes and checkboxes shown to buyers, not stock-keeping units.
            problems.skip(_l("select.csv rows that are not stock choices (選択肢タイプ s or c)"))
            continue
        manage = cell(row, i_item).strip()
        if not manage:
            problems.add(row_no, c.name(i_item), _l("商品管理番号 is empty."), table.filename)
            continue
        horizontal, vertical = cell(row, i_h), cell(row, i_v)
        h_no, v_no = cell(row, i_h_no).strip(), cell(row, i_v_no).strip()
        names = [value.strip() for value in (horizontal, vertical) if not blank(value)]
        if h_no or v_no:
            variant = h_no + v_no
            code = manage + h_no + v_no
        elif names:
            variant = "/".join(names)
            code = f"{manage}-{'-'.join(names)}"
        else:
            problems.add(
                row_no, c.name(i_h) or "項目選択肢別在庫用横軸選択肢",
                _l("This stock choice has neither a choice name nor a 子番号."), table.filename,
            )
            continue
        title, number = known.get(manage.lower(), (manage, ""))
        with_choices.add(manage.lower())
        attributes: dict[str, Any] = {"horizontal": horizontal, "vertical": vertical}
        if h_no:
            attributes["horizontal_no"] = h_no
        if v_no:
            attributes["vertical_no"] = v_no
        if number:
            attributes["item_number"] = number
        record = Record(
            row=row_no,
            item_code=manage.lower(),
            variant_code=variant,
            code=code,
            title=f"{title} {' / '.join(names)}".strip(),
            quantity=read_quantity(cell(row, i_quantity), row_no, c.name(i_quantity), problems, table.filename),
            attributes=attributes,
            filename=table.filename,
        )
        yield overrides.apply(record, row)


FORMAT = Format(
    name="rakuten-legacy",
    label=_l("Rakuten item.csv / select.csv (legacy format)"),
    malls=("rakuten", "rakuten-ftp"),
    matches=matches,
    read=read,
    multi_file=True,
)
