"""Amazon SP-API Orders v0 at /amazon/orders/v0/orders and …/orders/<orderId>/orderItems (real paths), with the
same `x-amz-access-token` as the Listings API and their published usage plans: getOrders 0.0167 requests/s with
a burst of 20, getOrderItems 0.5/s with a burst of 30 (429 QuotaExceeded beyond). Sources: docs/malls/amazon.md,
"Orders API".

getOrders: MarketplaceIds (required), LastUpdatedAfter (or CreatedAfter), LastUpdatedBefore, MaxResultsPerPage
(1–100), NextToken (the other criteria come with it) → payload.Orders[] {AmazonOrderId, PurchaseDate,
LastUpdateDate, OrderStatus, FulfillmentChannel MFN | AFN, …}, payload.NextToken. getOrderItems → payload.OrderItems[]
{SellerSKU, Title, QuantityOrdered, QuantityShipped, ItemPrice}. FBA (AFN) orders come like the others.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any, Optional

from flask import Blueprint, Response, jsonify, request

from .amazon import JAPAN, REPLIES, _errors
from .common import arrived, fault_reply, limiter, record, state

bp = Blueprint("amazon_orders", __name__, url_prefix="/amazon/orders/v0/orders")

MAX_PAGE = 100


def _begin(api: str) -> tuple[Optional[dict], Optional[Response]]:
    token = request.headers.get("x-amz-access-token", "")
    store, issued = state().store_for_token("amazon", token) if token else (None, False)
    if store is None:
        return None, REPLIES.auth_wrong()
    failure = fault_reply(store, REPLIES, refreshed_token=not issued)
    if failure is not None:
        return store, failure
    allowed, wait = limiter().allow(store["id"], "amazon", api, arrived())
    if not allowed:
        return store, REPLIES.throttled(wait)
    return store, None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@bp.get("")
def get_orders():
    store, failure = _begin("getOrders")
    if failure is not None:
        return record(store, "getOrders", failure)
    if JAPAN not in request.args.get("MarketplaceIds", "").split(","):
        return record(store, "getOrders", _errors(400, "InvalidInput", "MarketplaceIds must include A1VC38T7YXB528."))
    token = request.args.get("NextToken")
    try:
        if token:
            criteria = json.loads(base64.urlsafe_b64decode(token.encode()))
        else:
            after = _time(request.args.get("LastUpdatedAfter"))
            if after is None:
                return record(store, "getOrders", _errors(400, "InvalidInput",
                                                          "Either CreatedAfter or LastUpdatedAfter must be given."))
            criteria = {"after": after, "before": _time(request.args.get("LastUpdatedBefore")),
                        "size": int(request.args.get("MaxResultsPerPage", MAX_PAGE)), "offset": 0}
    except (ValueError, TypeError):
        return record(store, "getOrders", _errors(400, "InvalidInput", "A date or NextToken is not valid."))
    if not 1 <= criteria["size"] <= MAX_PAGE:
        return record(store, "getOrders", _errors(400, "InvalidInput", "MaxResultsPerPage must be 1 to 100."))
    before = criteria["before"] or 1e12
    orders = state().orders_updated(store["id"], criteria["after"], before)
    offset, size = criteria["offset"], criteria["size"]
    payload: dict[str, Any] = {"Orders": [_order(o) for o in orders[offset:offset + size]]}
    if offset + size < len(orders):
        payload["NextToken"] = base64.urlsafe_b64encode(
            json.dumps({**criteria, "offset": offset + size}).encode()).decode()
    if criteria["before"]:
        payload["LastUpdatedBefore"] = _iso(criteria["before"])
    return record(store, "getOrders", jsonify({"payload": payload}), len(payload["Orders"]))


@bp.get("/<order_id>/orderItems")
def get_order_items(order_id: str):
    store, failure = _begin("getOrderItems")
    if failure is not None:
        return record(store, "getOrderItems", failure)
    found = state().orders_by_number(store["id"], [order_id])
    if not found:
        return record(store, "getOrderItems", _errors(404, "NotFound", f"Order {order_id} was not found."))
    order = found[0]
    shipped = order["status"] == "shipped"
    items = [{"ASIN": f"B0SANDBOX{n:02d}", "SellerSKU": line["code"], "OrderItemId": f"{order_id}-{n}",
              "Title": line["title"], "QuantityOrdered": line["quantity"],
              "QuantityShipped": line["quantity"] if shipped else 0,
              "ItemPrice": {"CurrencyCode": "JPY", "Amount": f"{line['price'] * line['quantity']:.2f}"}}
             for n, line in enumerate(order["items"], start=1)]
    return record(store, "getOrderItems", jsonify({"payload": {"AmazonOrderId": order_id, "OrderItems": items}}),
                  len(items))


def _order(order: dict) -> dict[str, Any]:
    quantity = sum(line["quantity"] for line in order["items"])
    shipped = order["status"] == "shipped"
    return {
        "AmazonOrderId": order["number"],
        "PurchaseDate": datetime.fromisoformat(order["ordered_at"]).astimezone(timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "LastUpdateDate": _iso(order["updated"]),
        "OrderStatus": order["mall_status"] or "Unshipped",
        "FulfillmentChannel": "AFN" if order["fulfillment"] == "AFN" else "MFN",
        "SalesChannel": "Amazon.co.jp",
        "MarketplaceId": JAPAN,
        "NumberOfItemsShipped": quantity if shipped else 0,
        "NumberOfItemsUnshipped": 0 if shipped else quantity,
        "OrderTotal": {"CurrencyCode": "JPY",
                       "Amount": f"{sum(line['price'] * line['quantity'] for line in order['items']):.2f}"},
    }
