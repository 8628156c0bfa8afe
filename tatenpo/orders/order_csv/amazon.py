"""Amazon 注文レポート (セラーセントラル › 注文 › 注文レポート): a tab-separated flat file, one row per order item
(docs/malls/amazon.md, order reports). Two layouts are read:

- the order report of orders to ship (GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING, and in Japan the pending
  orders report): order-id, order-item-id, purchase-date, sku, product-name, quantity-purchased, item-price;
  every order in it is still to ship, so it is received;
- the all-orders report (GET_FLAT_FILE_ALL_ORDERS_DATA_BY_*): amazon-order-id, purchase-date, order-status
  (Pending, Unshipped, PartiallyShipped, Shipped, Canceled), fulfillment-channel (Amazon = FBA: shown, never
  moving the shop's stock), sku, product-name, quantity, item-price. A cancelled line may print quantity 0.

item-price is the line's price (the unit price times the quantity)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from tatenpo.listings.reading import Columns, Table, cell
from tatenpo.models import OrderStatus
from tatenpo.orders.mall_orders import MallOrder, MallOrderLine
from tatenpo.orders.order_csv.base import (
    Lines,
    OrderFormat,
    Read,
    bad_quantity,
    moment,
    no_number,
    quantity,
    text,
    yen,
)

ORDER_ID = ("order-id", "amazon-order-id")
QUANTITY = ("quantity-purchased", "quantity")
SKU, TITLE, PRICE, PURCHASED = "sku", "product-name", "item-price", "purchase-date"
STATUS, CHANNEL, UPDATED = "order-status", "fulfillment-channel", "last-updated-date"
SHIPPED = ("Shipped",)
CANCELLED = ("Canceled", "Cancelled")


def matches(columns: list[Columns]) -> bool:
    return len(columns) == 1 and columns[0].has(*ORDER_ID) and columns[0].has(SKU) and columns[0].has(*QUANTITY)


def status_of(value: str) -> OrderStatus:
    if value in CANCELLED:
        return OrderStatus.CANCELLED
    if value in SHIPPED:
        return OrderStatus.SHIPPED
    return OrderStatus.RECEIVED


def read(tables: list[Table]) -> Read:
    table = tables[0]
    result = Read()
    find = table.columns.find
    at_id, at_quantity = find(*ORDER_ID), find(*QUANTITY)
    at_sku, at_title, at_price, at_purchased, at_status, at_channel, at_updated = (
        find(SKU), find(TITLE), find(PRICE), find(PURCHASED), find(STATUS), find(CHANNEL), find(UPDATED))
    quantity_column = table.columns.name(at_quantity)
    orders: dict[str, Lines] = {}
    for row, cells in table.rows():
        result.rows += 1
        number = text(cell(cells, at_id))
        if not number:
            no_number(result, table, row, table.columns.name(at_id))
            continue
        order = orders.setdefault(number, Lines(number, row))
        order.keep("status", text(cell(cells, at_status)))
        order.keep("channel", text(cell(cells, at_channel)))
        order.keep("purchased", text(cell(cells, at_purchased)))
        order.keep("updated", text(cell(cells, at_updated)))
        units = quantity(cell(cells, at_quantity))
        if units is None:
            bad_quantity(result, table, row, quantity_column, cell(cells, at_quantity))
            continue
        if units == 0:
            if status_of(text(cell(cells, at_status))) != OrderStatus.CANCELLED:
                bad_quantity(result, table, row, quantity_column, cell(cells, at_quantity))
            continue  # a cancelled line: nothing was bought
        sku = text(cell(cells, at_sku))
        if not sku:
            result.problem(_l("The item has no sku."), row=row, column=SKU, file=table.filename)
            continue
        price = yen(cell(cells, at_price))
        order.lines.append(MallOrderLine(item_code=sku, variant_code="", quantity=units,
                                         title=text(cell(cells, at_title)),
                                         unit_price=price // units if price is not None and price % units == 0 else None))
    for order in orders.values():
        status = order.fields.get("status", "")
        result.orders.append(MallOrder(
            # Shown in the Orders API's words (Canceled), as the order API door shows it.
            number=order.number, status=status_of(status),
            mall_status="Canceled" if status in CANCELLED else (status or "Unshipped"),
            lines=tuple(order.lines), ordered_at=moment(order.fields.get("purchased", "")),
            updated_at=moment(order.fields.get("updated", "")),
            moves_stock=order.fields.get("channel", "") != "Amazon"))
    return result


FORMAT = OrderFormat("amazon-orders", _l("Amazon order report (注文レポート, tab-separated)"), "amazon", matches, read)
