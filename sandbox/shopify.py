"""Shopify GraphQL Admin API at /shopify/<shop>/admin/api/<version>/graphql.json (the shop's domain becomes a
path segment; everything after it is the real path).

The sandbox does not parse GraphQL: it recognises the operation by its root field and takes the data from
the variables, which is how a real client sends it. Served: `inventorySetQuantities` (≤250 quantities,
`changeFromQuantity` and `@idempotent(key:)` required from 2026-04, a repeated key answering the first result
again, CHANGE_FROM_QUANTITY_STALE and the other userErrors; atomic: any userError changes nothing), `nodes(ids:)` on InventoryItem with `inventoryLevel(locationId:)` quantities,
`productVariants(query: "sku:…")`, `locations` and `shop`. Throttling is the cost-based leaky bucket
(1000 points, 100 points/s restore) answering THROTTLED with `throttleStatus`.
"""
from __future__ import annotations

import re
import secrets
import uuid
from typing import Any, Optional

from flask import Blueprint, Response, jsonify, request

from . import catalog, listing_csv, oauth, order_mails, shopify_orders, shopify_webhooks
from .common import Replies, fault_reply, limiter, record, reflection_delay, state
from .limits import SHOPIFY_BUCKET, SHOPIFY_COST_PER_ITEM, SHOPIFY_MUTATION_COST, SHOPIFY_RESTORE_RATE
from .malls import ListingFile, SandboxMall

bp = Blueprint("shopify", __name__, url_prefix="/shopify/<shop>/admin/api/<version>")

MAX_QUANTITIES = 250
MAX_QUANTITY = 1_000_000_000
CHANGE_FROM_REQUIRED = "2026-04"
# From 2026-04 the inventory mutations refuse to run without @idempotent(key:) (Shopify changelog "Making
# idempotency mandatory for inventory adjustments and refund mutations"); a key seen before answers the first
# result again without applying anything.
IDEMPOTENT_REQUIRED = "2026-04"
IDEMPOTENT = re.compile(r"@idempotent\s*\(\s*key\s*:\s*(?:\$(\w+)|\"([^\"]*)\")\s*\)")


def _plain(status: int, message: str) -> Response:
    response = jsonify({"errors": message})
    response.status_code = status
    return response


def _cost(requested: float, actual: Optional[float], available: float) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": {
        "maximumAvailable": SHOPIFY_BUCKET, "currentlyAvailable": round(available, 1),
        "restoreRate": SHOPIFY_RESTORE_RATE}}}


def _throttled(requested: float, available: float) -> Response:
    return jsonify({"errors": [{"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": _cost(requested, None, available)})


REPLIES = Replies(
    auth_wrong=lambda: _plain(401, "[API] Invalid API key or access token (unrecognized login or wrong password)"),
    auth_expired=lambda: _plain(401, "[API] Invalid API key or access token (unrecognized login or wrong password)"),
    maintenance=lambda: _plain(503, "Service Unavailable"),
    server_error=lambda: _plain(500, "Internal Server Error"),
    gateway_timeout=lambda: _plain(504, "Gateway Timeout"),
    throttled=lambda wait: _throttled(SHOPIFY_MUTATION_COST, 0.0),  # recorded under the api "graphql"
)


# (store id, idempotency key) → the answer given: a repeated key gets it again and changes nothing.
_answered: dict[tuple[int, str], dict] = {}


def _top_error(message: str, code: str) -> Response:
    return jsonify({"errors": [{"message": message, "extensions": {"code": code}}]})


@bp.post("/graphql.json")
def graphql(shop: str, version: str):
    store = state().store_by_shop("shopify", shop)
    token = request.headers.get("X-Shopify-Access-Token", "")
    if store is None or token != store["credentials"]["access_token"]:
        return record(store, "graphql", REPLIES.auth_wrong())
    failure = fault_reply(store, REPLIES)
    if failure is not None:
        return record(store, "graphql", failure)
    if not re.fullmatch(r"\d{4}-\d{2}", version):
        return record(store, "graphql", _plain(404, "Not Found"))
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return record(store, "graphql", _plain(400, "Bad Request: send {\"query\": …, \"variables\": …}"))
    query, variables = body["query"], body.get("variables") or {}
    root = re.search(r"\{\s*(?:\w+\s*:\s*)?(\w+)", query)  # the first field of the operation
    field = root.group(1) if root else ""
    if field == "inventorySetQuantities":
        api, handler = "inventorySetQuantities", _set_quantities
        size = len(((variables.get("input") or {}).get("quantities")) or [])
        cost = SHOPIFY_MUTATION_COST + SHOPIFY_COST_PER_ITEM * size
    elif field == "productVariants":
        api, handler = "productVariants", _variants
        cost = 1 + SHOPIFY_COST_PER_ITEM * int(variables.get("first") or 50)
    elif field == "nodes":
        api, handler = "nodes", _nodes
        cost = 1 + SHOPIFY_COST_PER_ITEM * len(variables.get("ids") or [])
    elif field == "locations":
        api, handler, cost = "locations", _locations, 2
    elif field == "shop":
        api, handler, cost = "shop", _shop, 1
    elif field == "webhookSubscriptionCreate":  # order webhooks: sandbox/shopify_webhooks.py
        api, handler, cost = "webhookSubscriptionCreate", shopify_webhooks.graphql_create, 10
    elif field == "orders":  # the order catch-up query: sandbox/shopify_orders.py
        api, cost = "orders", shopify_orders.cost(variables)
        handler = lambda store, variables, version: shopify_orders.orders(state(), store, variables)  # noqa: E731
    else:
        return record(store, "graphql", _top_error("The sandbox serves inventorySetQuantities, nodes, productVariants,"
                                                   " locations and shop.", "UNSUPPORTED"))
    key = None
    if api == "inventorySetQuantities" and version >= IDEMPOTENT_REQUIRED:
        found = IDEMPOTENT.search(query)
        key = (variables.get(found.group(1)) if found.group(1) else found.group(2)) if found else None
        if not key:
            # [inferred] the wording; the changelog says only that the call fails at runtime without the key.
            return record(store, api, _top_error("inventorySetQuantities requires the @idempotent directive with a"
                                                 " key from API version 2026-04.", "BAD_REQUEST"))
        replay = _answered.get((store["id"], str(key)))
        if replay is not None:
            return record(store, api, jsonify(replay))
    allowed, available = limiter().shopify(store["id"], cost)
    if not allowed:
        return record(store, "THROTTLED", _throttled(cost, available))
    payload, items = handler(store, variables, version)
    if key is not None and "errors" not in payload:
        _answered[(store["id"], str(key))] = {**payload, "extensions": _cost(cost, cost, available)}
    return record(store, api, jsonify({**payload, "extensions": _cost(cost, cost, available)}), items)


def _set_quantities(store: dict, variables: dict, version: str) -> tuple[dict, int]:
    data = variables.get("input")
    if not isinstance(data, dict) or not isinstance(data.get("quantities"), list):
        return {"errors": [{"message": "Variable $input of type InventorySetQuantitiesInput! was not provided.",
                            "extensions": {"code": "INVALID_VARIABLE"}}]}, 0
    quantities = data["quantities"]
    if len(quantities) > MAX_QUANTITIES:
        return {"errors": [{"message": f"The input array size of {len(quantities)} is greater than the maximum"
                                       f" allowed of {MAX_QUANTITIES}.",
                            "extensions": {"code": "MAX_INPUT_SIZE_EXCEEDED"}}]}, len(quantities)
    if version >= CHANGE_FROM_REQUIRED:
        for i, q in enumerate(quantities):
            if not isinstance(q, dict) or "changeFromQuantity" not in q:
                return {"errors": [{"message": f"Variable $input was provided invalid value for quantities.{i}."
                                               "changeFromQuantity (Expected value to not be null)",
                                    "extensions": {"code": "INVALID_VARIABLE"}}]}, len(quantities)
    errors: list[dict] = []
    if data.get("name") not in ("available", "on_hand"):
        errors.append({"code": "INVALID_NAME", "field": ["input", "name"], "message": "The quantity name must be"
                                                                                      " available or on_hand."})
    location = catalog.location_id(store["id"])
    keys = [(str(q.get("inventoryItemId")), str(q.get("locationId"))) for q in quantities if isinstance(q, dict)]
    found = state().items_by_key(store["id"], keys)
    changes, deltas = [], []
    for i, q in enumerate(quantities):
        path = ["input", "quantities", str(i)]
        item_id, location_id = str(q.get("inventoryItemId")), str(q.get("locationId"))
        item = found.get((item_id, location_id))
        value, expected = q.get("quantity"), q.get("changeFromQuantity")
        if location_id != location:
            errors.append({"code": "INVALID_LOCATION", "field": path + ["locationId"],
                           "message": "The specified location could not be found."})
        elif item is None:
            errors.append({"code": "INVALID_INVENTORY_ITEM", "field": path + ["inventoryItemId"],
                           "message": "The specified inventory item could not be found."})
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
            errors.append({"code": "INVALID_QUANTITY_NEGATIVE", "field": path + ["quantity"],
                           "message": "The quantity can't be negative."})
        elif value > MAX_QUANTITY:
            errors.append({"code": "INVALID_QUANTITY_TOO_HIGH", "field": path + ["quantity"],
                           "message": "The quantity can't be higher than 1,000,000,000."})
        elif expected is not None and expected != _believed(item):
            errors.append({"code": "CHANGE_FROM_QUANTITY_STALE", "field": path + ["changeFromQuantity"],
                           "message": "The specified compare quantity does not match the current quantity."})
        else:
            changes.append((item_id, location_id, value))
            deltas.append({"name": data.get("name"), "delta": value - _believed(item),
                           "item": {"id": item_id}, "location": {"id": location_id}})
    if errors:
        return {"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": errors}}}, len(quantities)
    state().set_quantities(store["id"], changes, delay=reflection_delay(store))
    group = {"id": f"gid://shopify/InventoryAdjustmentGroup/{uuid.uuid4().int % 10**12}",
             "reason": data.get("reason"), "referenceDocumentUri": data.get("referenceDocumentUri"), "changes": deltas}
    return {"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": []}}}, len(quantities)


def _believed(item: dict) -> int:
    """The quantity Shopify holds now (a delayed one counts: the mall has it, the storefront lags)."""
    return item["pending_quantity"] if item["pending_quantity"] is not None else item["quantity"]


def _nodes(store: dict, variables: dict, version: str) -> tuple[dict, int]:
    ids = [str(i) for i in variables.get("ids") or []]
    location = str(variables.get("locationId") or catalog.location_id(store["id"]))
    found = state().items_by_key(store["id"], [(i, location) for i in ids])
    nodes = []
    for item_id in ids:
        item = found.get((item_id, location))
        if item is None:
            nodes.append(None)
            continue
        nodes.append({"id": item_id, "sku": item["sku"], "inventoryLevel": {
            "quantities": [{"name": "available", "quantity": item["quantity"]}]}})
    return {"data": {"nodes": nodes}}, len(ids)


def _variants(store: dict, variables: dict, version: str) -> tuple[dict, int]:
    wanted = set(re.findall(r"sku:(\"[^\"]*\"|'[^']*'|[^\s)]+)", str(variables.get("query") or "")))
    wanted = {w.strip("\"'") for w in wanted}
    first = int(variables.get("first") or 50)
    nodes = [{"id": i["extra"].get("variant_id"), "sku": i["sku"], "inventoryItem": {"id": i["code"]},
              "product": {"handle": i["extra"].get("handle")}}
             for i in state().items(store["id"]) if i["sku"] in wanted][:first]
    return {"data": {"productVariants": {"nodes": nodes}}}, len(nodes)


def _locations(store: dict, variables: dict, version: str) -> tuple[dict, int]:
    return {"data": {"locations": {"nodes": [
        {"id": catalog.location_id(store["id"]), "name": "本店倉庫", "isActive": True}]}}}, 0


def _shop(store: dict, variables: dict, version: str) -> tuple[dict, int]:
    return {"data": {"shop": {"name": store["name"], "myshopifyDomain": f"{store['shop']}.myshopify.com"}}}, 0


# The registry entry (sandbox.malls) ------------------------------------------------------------------------

def _identity(store_id: int, i: int, n: int, base: str, sku: str, opt: str) -> dict:
    number = store_id * 1_000_000 + i * 10 + n
    extra = {"handle": base.lower(), "variant_id": f"gid://shopify/ProductVariant/{number}",
             "product_id": f"gid://shopify/Product/{store_id * 1_000_000 + i}"}
    return {"code": f"gid://shopify/InventoryItem/{number}", "variant": catalog.location_id(store_id), "extra": extra}


SANDBOX_MALLS = [SandboxMall(
    key="shopify", name="Shopify",
    # The store's custom app: its Admin API token, and its client ID and secret for the authorization code grant
    # (sandbox/oauth.py).
    issue_credentials=lambda store_id, shop: {"shop": shop, "access_token": "shpat_" + secrets.token_hex(16),
                                              "client_id": secrets.token_hex(16),
                                              "client_secret": "shpss_" + secrets.token_hex(16)},
    endpoint=lambda store, where: f"{where.public_url}/shopify/{store['shop']}", identity=_identity,
    # The older layout stays the default download, so files saved before keep matching; both are read.
    files=(ListingFile("products", "products_export.csv", listing_csv.shopify_products),
           ListingFile("products-current", "products_export_current.csv", listing_csv.shopify_products_current)),
    compose_mail=order_mails.shopify_mail, order_number=order_mails.shopify_number,
    store_key=lambda store: store["shop"], buyer="山田 太郎", blueprints=(bp, oauth.shopify_bp, shopify_webhooks.bp),
    item_fields=lambda item: {"handle": item["extra"].get("handle")},
)]
