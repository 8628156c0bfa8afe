"""Shopify GraphQL Admin API `orders` (served by sandbox/shopify.py's graphql endpoint): the catch-up query for
what webhooks missed. `orders(first:, after:, query: "updated_at:>'…'", sortKey: UPDATED_AT)` with cursor
pagination (pageInfo { hasNextPage endCursor }); each order's `name` (#1001, as the order notification prints
it), createdAt, updatedAt, cancelledAt, displayFulfillmentStatus and lineItems { sku title quantity
variantTitle originalUnitPriceSet }. Sources: docs/malls/shopify.md, "Orders API".

The sandbox answers the fields Tatenpo's query asks and ignores the selection set's shape otherwise.
"""
from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from typing import Any, Optional

MAX_FIRST = 250
# Shopify search syntax for a date: updated_at:>'2026-11-30T10:00:00Z' (also >=, <, <=; quotes optional).
UPDATED = re.compile(r"updated_at:(>=|<=|>|<)'?([0-9TZ:+.\-]+)'?")
ORDER_GID = "gid://shopify/Order/"


def cost(variables: dict) -> int:
    """[inferred] A connection costs 2 plus one point per node asked, nested line items included."""
    first = int(variables.get("first") or 50)
    return 2 + first * 2


def orders(state, store: dict, variables: dict) -> tuple[dict, int]:
    first = int(variables.get("first") or 50)
    if not 1 <= first <= MAX_FIRST:
        return {"errors": [{"message": f"first must be 1 to {MAX_FIRST}",
                            "extensions": {"code": "BAD_REQUEST"}}]}, 0
    bounds = []
    for op, text in UPDATED.findall(str(variables.get("query") or "")):
        try:
            bounds.append((op, datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()))
        except ValueError:
            return {"errors": [{"message": f"Invalid date in query: {text}",
                                "extensions": {"code": "BAD_REQUEST"}}]}, 0
    after = _cursor(variables.get("after"))
    found = [o for o in state.orders(store["id"]) if all(_holds(o["updated"], op, at) for op, at in bounds)]
    found.sort(key=lambda o: (o["updated"], o["number"]))
    if after is not None:
        found = [o for o in found if (o["updated"], o["number"]) > after]
    page = found[:first]
    edges = [{"cursor": _encode(o), "node": _node(store, o)} for o in page]
    return {"data": {"orders": {
        "edges": edges, "nodes": [e["node"] for e in edges],
        "pageInfo": {"hasNextPage": len(found) > first, "endCursor": edges[-1]["cursor"] if edges else None},
    }}}, len(page)


def _holds(value: float, op: str, at: float) -> bool:
    return {">": value > at, ">=": value >= at, "<": value < at, "<=": value <= at}[op]


def _encode(order: dict) -> str:
    return base64.urlsafe_b64encode(f"{order['updated']!r}|{order['number']}".encode()).decode()


def _cursor(value: Any) -> Optional[tuple[float, str]]:
    if not value:
        return None
    updated, _, number = base64.urlsafe_b64decode(str(value).encode()).decode().partition("|")
    return float(updated), number


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node(store: dict, order: dict) -> dict[str, Any]:
    number = int(order["number"].lstrip("#") or 0)
    cancelled = order["status"] == "cancelled"
    return {
        "id": f"{ORDER_GID}{store['id'] * 100000 + number}",
        "name": order["number"],
        "createdAt": datetime.fromisoformat(order["ordered_at"]).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updatedAt": _iso(order["updated"]),
        "cancelledAt": _iso(order["updated"]) if cancelled else None,
        "displayFulfillmentStatus": "FULFILLED" if order["status"] == "shipped" else "UNFULFILLED",
        "lineItems": {"nodes": [
            {"sku": line.get("sku") or line["code"], "title": line["title"], "quantity": line["quantity"],
             "variantTitle": " / ".join(value for _name, value in line.get("choices") or []) or None,
             "originalUnitPriceSet": {"shopMoney": {"amount": f"{line['price']:.1f}", "currencyCode": "JPY"}}}
            for line in order["items"]]},
    }
