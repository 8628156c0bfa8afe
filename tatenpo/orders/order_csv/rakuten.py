"""楽天 RMS 受注CSV (楽天ペイ受注管理 › データダウンロード, 全カラムダウンロード用 template): one row per item of
each 送付先, CP932. The columns read, and what they mean (docs/malls/rakuten.md, 受注CSV):

注文番号 the order number as the order mail prints [受注番号]; ステータス the order's progress in words (注文確認待ち,
楽天処理中, 発送待ち, 変更確定待ち, 発送済, 支払手続き中, 支払手続き済, キャンセル確定待ち, キャンセル確定); 注文日時;
商品管理番号 (商品番号 when it is absent), SKU管理番号 where the file has it; 商品名; 単価; 個数; 項目・選択肢
(one 項目:選択肢 per line)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.malls.rakuten_orders import PROGRESS
from tatenpo.malls.rakuten_orders import status_of as progress_status
from tatenpo.models import OrderStatus
from tatenpo.orders.mall_orders import MallOrder, MallOrderLine
from tatenpo.orders.order_csv.base import (
    Lines,
    OrderFormat,
    Read,
    bad_quantity,
    moment,
    need,
    no_number,
    quantity,
    text,
    yen,
)

NUMBER, STATUS, ORDERED = "注文番号", "ステータス", "注文日時"
MANAGE, ITEM_NUMBER, SKU, TITLE, PRICE, UNITS, CHOICES = (
    "商品管理番号", "商品番号", "SKU管理番号", "商品名", "単価", "個数", "項目・選択肢")
# The file prints orderProgress in words: read back to the code, the status follows the order API door's rule
# (tatenpo.malls.rakuten_orders: 500–700 shipped, 800–900 cancelled), shown as that door shows it ("500 発送済").
CODES = {words: code for code, words in PROGRESS.items()}


def matches(columns: list[Columns]) -> bool:
    return len(columns) == 1 and columns[0].has_all(NUMBER, UNITS) and columns[0].has(MANAGE, ITEM_NUMBER)


def status_of(words: str) -> tuple[OrderStatus, str]:
    """(status, the mall's status as shown) of the ステータス cell; words RMS does not list leave it received."""
    code = CODES.get(words)
    if code is None:
        return OrderStatus.RECEIVED, words
    return progress_status(code), f"{code} {words}"


def choices_of(value: str) -> str:
    """項目・選択肢 cells hold one 項目:選択肢 per line (CRLF, LF, or RMS's literal <br>)."""
    parts = [part.strip() for part in value.replace("<br>", "\n").splitlines()]
    return " / ".join(part for part in parts if part)


def read(tables: list[Table]) -> Read:
    table = tables[0]
    result = Read()
    at_number = need(result, table, NUMBER)
    at_units = need(result, table, UNITS)
    if at_number is None or at_units is None:
        return result
    find = table.columns.find
    at_code, at_item_number, at_sku = find(MANAGE), find(ITEM_NUMBER), find(SKU)
    at_status, at_ordered, at_title, at_price, at_choices = (
        find(STATUS), find(ORDERED), find(TITLE), find(PRICE), find(CHOICES))
    orders: dict[str, Lines] = {}
    for row, cells in table.rows():
        result.rows += 1
        number = text(cell(cells, at_number))
        if not number:
            no_number(result, table, row, NUMBER)
            continue
        order = orders.setdefault(number, Lines(number, row))
        order.keep("status", text(cell(cells, at_status)))
        order.keep("ordered", text(cell(cells, at_ordered)))
        code = text(cell(cells, at_code)) or text(cell(cells, at_item_number))
        units = quantity(cell(cells, at_units))
        if not code:
            result.problem(_l("The item has no 商品管理番号 or 商品番号."), row=row, column=MANAGE, file=table.filename)
            continue
        if not units:
            bad_quantity(result, table, row, UNITS, cell(cells, at_units))
            continue
        order.lines.append(MallOrderLine(item_code=code, variant_code=text(cell(cells, at_sku)), quantity=units,
                                         title=text(cell(cells, at_title)),
                                         choices=choices_of(cell(cells, at_choices)),
                                         unit_price=yen(cell(cells, at_price))))
    for order in orders.values():
        status, mall_status = status_of(order.fields.get("status", ""))
        result.orders.append(MallOrder(number=order.number, status=status, mall_status=mall_status,
                                       lines=tuple(order.lines), ordered_at=moment(order.fields.get("ordered", ""))))
    return result


FORMAT = OrderFormat("rakuten-orders", _l("楽天 RMS order CSV (受注CSV)"), "rakuten", matches, read)
