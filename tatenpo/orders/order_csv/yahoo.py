"""Yahoo!ショッピング 注文データCSV (ストアクリエイターPro › 注文管理 › 注文データのダウンロード): two files, read
together — the orders (one row per order) and their items (one row per line), CP932, headed by the order
API's field names (docs/malls/yahoo.md, 注文データCSV). Uploaded as the two CSVs or as the zip holding both.

Orders: OrderId (as the order mail prints 注文ID), OrderStatus (1 予約中, 2 処理中, 3 保留, 4 キャンセル, 5 完了),
OrderTime, and ShipStatus where present (3 出荷完了, 4 着荷完了); both read by the order API door's rule
(tatenpo.malls.yahoo_orders.status_of). Items: OrderId, ItemId, SubCode, Title,
Quantity, UnitPrice, ItemOptionName / ItemOptionValue."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.malls.yahoo_orders import ORDER_STATUS, SHIP_STATUS, status_of
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

ORDER_ID = "OrderId"
ITEM_ID, SUB_CODE, TITLE, QUANTITY, UNIT_PRICE = "ItemId", "SubCode", "Title", "Quantity", "UnitPrice"
OPTION_NAME, OPTION_VALUE = "ItemOptionName", "ItemOptionValue"
STATUS_COLUMN, TIME_COLUMN, SHIP_COLUMN = "OrderStatus", "OrderTime", "ShipStatus"


def _is_items(columns: Columns) -> bool:
    return columns.has_all(ORDER_ID, ITEM_ID, QUANTITY)


def _is_orders(columns: Columns) -> bool:
    return columns.has(ORDER_ID) and columns.has(STATUS_COLUMN, TIME_COLUMN) and not columns.has(ITEM_ID)


def matches(columns: list[Columns]) -> bool:
    # Either file alone is recognised too, so the reader can say which one is missing.
    return bool(columns) and all(_is_items(c) or _is_orders(c) for c in columns)


def shown(order_status: str, ship_status: str) -> str:
    """The mall's status as the order API door shows it (tatenpo.malls.yahoo_orders): "2 処理中 / 出荷可"."""
    text = f"{order_status} {ORDER_STATUS.get(order_status, '')}".strip()
    return text + (f" / {SHIP_STATUS.get(ship_status, ship_status)}" if ship_status else "")


def read(tables: list[Table]) -> Read:
    result = Read()
    items = [t for t in tables if _is_items(t.columns)]
    heads = [t for t in tables if _is_orders(t.columns)]
    if len(items) != 1 or len(heads) != 1:
        result.problem(_l("Upload Yahoo's two order files together: the orders file (OrderId, OrderStatus) and the "
                          "items file (OrderId, ItemId, Quantity), or the zip holding both."), row=1)
        return result
    orders: dict[str, Lines] = {}
    head = heads[0]
    at_id, at_status, at_time, at_ship = (head.columns.find(ORDER_ID), head.columns.find(STATUS_COLUMN),
                                          head.columns.find(TIME_COLUMN), head.columns.find(SHIP_COLUMN))
    for row, cells in head.rows():
        result.rows += 1
        number = text(cell(cells, at_id))
        if not number:
            no_number(result, head, row, ORDER_ID)
            continue
        if number in orders:
            result.problem(_l("The order %(number)s appears twice in the orders file.", number=number), row=row,
                           column=ORDER_ID, file=head.filename)
            continue
        order = orders[number] = Lines(number, row)
        order.keep("status", text(cell(cells, at_status)))
        order.keep("ship", text(cell(cells, at_ship)))
        order.keep("time", text(cell(cells, at_time)))
    table = items[0]
    at_id = need(result, table, ORDER_ID)
    find = table.columns.find
    at_item, at_sub, at_title, at_quantity, at_price, at_name, at_value = (
        find(ITEM_ID), find(SUB_CODE), find(TITLE), find(QUANTITY), find(UNIT_PRICE), find(OPTION_NAME),
        find(OPTION_VALUE))
    for row, cells in table.rows():
        result.rows += 1
        number = text(cell(cells, at_id))
        if not number:
            no_number(result, table, row, ORDER_ID)
            continue
        order = orders.get(number)
        if order is None:
            result.problem(_l("The order %(number)s of this item is not in the orders file.", number=number), row=row,
                           column=ORDER_ID, file=table.filename)
            continue
        code, units = text(cell(cells, at_item)), quantity(cell(cells, at_quantity))
        if not code:
            result.problem(_l("The item has no ItemId (商品コード)."), row=row, column=ITEM_ID, file=table.filename)
            continue
        if not units:
            bad_quantity(result, table, row, QUANTITY, cell(cells, at_quantity))
            continue
        name, value = text(cell(cells, at_name)), text(cell(cells, at_value))
        order.lines.append(MallOrderLine(item_code=code, variant_code=text(cell(cells, at_sub)), quantity=units,
                                         title=text(cell(cells, at_title)),
                                         choices=f"{name}:{value}" if name and value else value,
                                         unit_price=yen(cell(cells, at_price))))
    for order in orders.values():
        code, ship = order.fields.get("status", ""), order.fields.get("ship", "")
        result.orders.append(MallOrder(
            number=order.number, status=status_of(code, ship), mall_status=shown(code, ship), lines=tuple(order.lines),
            ordered_at=moment(order.fields.get("time", ""))))
    return result


FORMAT = OrderFormat("yahoo-orders", _l("Yahoo! order data (注文データCSV, orders + items)"), "yahoo", matches, read,
                     multi_file=True)
