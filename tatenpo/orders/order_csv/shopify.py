"""Shopify orders export (管理画面 › 注文管理 › エクスポート, "CSV for Excel, Numbers, or other spreadsheet
programs"): one row per line item, UTF-8; the order's own fields (Financial Status, Fulfillment Status, Created
at, Cancelled at …) are printed on its first row only (docs/malls/shopify.md, orders export).

Name the order number as the order mail and webhooks give it (#1001); Lineitem sku, Lineitem quantity,
Lineitem name, Lineitem price; cancelled when Cancelled at is set, shipped when Fulfillment Status is
"fulfilled" (else "unfulfilled" or "partial": received)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from tatenpo.listings.reading import Columns, Table, cell
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
from tatenpo.orders.shopify_webhooks import order_status

NAME, SKU, QUANTITY, TITLE, PRICE = "Name", "Lineitem sku", "Lineitem quantity", "Lineitem name", "Lineitem price"
FULFILLMENT, CANCELLED_AT, CREATED_AT = "Fulfillment Status", "Cancelled at", "Created at"


def matches(columns: list[Columns]) -> bool:
    return len(columns) == 1 and columns[0].has_all(NAME, QUANTITY, SKU)


def read(tables: list[Table]) -> Read:
    table = tables[0]
    result = Read()
    at_name, at_quantity = need(result, table, NAME), need(result, table, QUANTITY)
    if at_name is None or at_quantity is None:
        return result
    find = table.columns.find
    at_sku, at_title, at_price, at_fulfillment, at_cancelled, at_created = (
        find(SKU), find(TITLE), find(PRICE), find(FULFILLMENT), find(CANCELLED_AT), find(CREATED_AT))
    orders: dict[str, Lines] = {}
    for row, cells in table.rows():
        result.rows += 1
        number = text(cell(cells, at_name))
        if not number:
            no_number(result, table, row, NAME)
            continue
        order = orders.setdefault(number, Lines(number, row))
        order.keep("fulfillment", text(cell(cells, at_fulfillment)))
        order.keep("cancelled", text(cell(cells, at_cancelled)))
        order.keep("created", text(cell(cells, at_created)))
        units = quantity(cell(cells, at_quantity))
        if not units:
            bad_quantity(result, table, row, QUANTITY, cell(cells, at_quantity))
            continue
        order.lines.append(MallOrderLine(item_code=text(cell(cells, at_sku)), variant_code="", quantity=units,
                                         title=text(cell(cells, at_title)), unit_price=yen(cell(cells, at_price))))
    for order in orders.values():
        status, mall_status = order_status(bool(order.fields.get("cancelled")), order.fields.get("fulfillment", ""))
        result.orders.append(MallOrder(number=order.number, status=status, mall_status=mall_status,
                                       lines=tuple(order.lines), ordered_at=moment(order.fields.get("created", ""))))
    return result


FORMAT = OrderFormat("shopify-orders", _l("Shopify orders export"), "shopify", matches, read)
