"""Amazon SP-API Orders v0 for AmazonConnector.read_orders (tatenpo.malls.order_reading), with the Listings API's
LWA token (the app needs the Orders role). Sources: docs/malls/amazon.md, "Orders API".

- getOrders by LastUpdatedAfter for Amazon.co.jp (MarketplaceIds A1VC38T7YXB528), following NextToken; its usage
  plan is 0.0167 requests/s with a burst of 20, so a poll spends one call per page and the pacer spaces them.
- getOrderItems (0.5/s, burst 30) for each order whose lines Tatenpo does not have yet (`known` are left out).
- FulfillmentChannel AFN (FBA: Amazon ships from its own warehouse) orders are reported with moves_stock=False:
  shown, never allocating. OrderStatus Canceled → cancelled, Shipped → shipped; Pending, Unshipped and
  PartiallyShipped are still to ship (received).
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Optional
from urllib.parse import quote

from flask_babel import gettext as _

from tatenpo.malls.base import HINT_APPLICATION, MallError
from tatenpo.malls.http import Pace
from tatenpo.malls.order_reading import aware_utc, parse_time
from tatenpo.models import OrderStatus
from tatenpo.orders.mall_orders import MallOrder, MallOrderLine

if TYPE_CHECKING:
    from tatenpo.malls.amazon import AmazonConnector

JAPAN = "A1VC38T7YXB528"
ORDERS_RATE, ORDERS_BURST = 0.0167, 20
ITEMS_RATE, ITEMS_BURST = 0.5, 30
STATUSES = {"Canceled": OrderStatus.CANCELLED, "Shipped": OrderStatus.SHIPPED}


def read(connector: "AmazonConnector", since: datetime, *, open_numbers: Sequence[str] = (),
         known: Collection[str] = ()) -> list[MallOrder]:
    missing = connector._missing_credentials()
    if missing:
        raise missing
    base = connector.base.removesuffix("/listings/2021-08-01/items") + "/orders/v0/orders"
    account = connector.patch_pace.key.removesuffix(":patch")
    orders_pace = Pace(account + ":getOrders", ORDERS_RATE, ORDERS_BURST)
    items_pace = Pace(account + ":getOrderItems", ITEMS_RATE, ITEMS_BURST)
    params: dict[str, str] = {"MarketplaceIds": JAPAN,
                              "LastUpdatedAfter": aware_utc(since).strftime("%Y-%m-%dT%H:%M:%SZ")}
    orders: list[MallOrder] = []
    while True:
        payload = _get(connector, base, orders_pace, params)
        for order in payload.get("Orders") or []:
            number = str(order.get("AmazonOrderId") or "")
            if not number:
                continue
            lines = () if number in known else _items(connector, base, items_pace, number)
            status = str(order.get("OrderStatus") or "")
            orders.append(MallOrder(
                number=number, status=STATUSES.get(status, OrderStatus.RECEIVED), mall_status=status,
                lines=lines, ordered_at=parse_time(order.get("PurchaseDate")),
                updated_at=parse_time(order.get("LastUpdateDate")),
                moves_stock=order.get("FulfillmentChannel") != "AFN"))
        token = payload.get("NextToken")
        if not token:
            return orders
        params = {"MarketplaceIds": JAPAN, "NextToken": token}


def _items(connector, base: str, pace: Pace, number: str) -> tuple[MallOrderLine, ...]:
    lines: list[MallOrderLine] = []
    params: dict[str, str] = {}
    while True:
        payload = _get(connector, f"{base}/{quote(number, safe='')}/orderItems", pace, params)
        for item in payload.get("OrderItems") or []:
            quantity = int(item.get("QuantityOrdered") or 0)
            if quantity > 0:
                lines.append(MallOrderLine(item_code=str(item.get("SellerSKU") or ""), variant_code="",
                                           quantity=quantity, title=str(item.get("Title") or ""),
                                           unit_price=_unit_price(item.get("ItemPrice"), quantity)))
        token = payload.get("NextToken")
        if not token:
            return tuple(lines)
        params = {"NextToken": token}


def _unit_price(money: Optional[dict], quantity: int) -> Optional[int]:
    # ItemPrice is the line's total (unit price × quantity), in the marketplace currency.
    try:
        return int(Decimal(str((money or {})["Amount"])) / quantity)
    except (KeyError, InvalidOperation, ZeroDivisionError):
        return None


def _get(connector, url: str, pace: Pace, params: dict) -> dict:
    try:
        response = connector._call("GET", url, pace, params=params)
    except MallError as exc:
        if exc.code == "Unauthorized":
            raise MallError(_("Amazon refused the order request: the app needs the Orders role (Seller Central › "
                              "Apps › authorise it again with the role), or the token is invalid."), transient=False,
                            hint=HINT_APPLICATION, code=exc.code) from exc
        raise
    if response.status_code != 200:
        from tatenpo.malls.amazon import _error_text
        raise MallError(_("Amazon refused the order request: %(detail)s", detail=_error_text(response)),
                        transient=False, code=f"http-{response.status_code}")
    return response.json().get("payload") or {}
