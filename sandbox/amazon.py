"""Amazon SP-API Listings Items 2021-08-01 at /amazon/listings/2021-08-01/items/<sellerId>/<sku> (real paths).

patchListingsItem sets `fulfillment_availability` (op replace or merge); getListingsItem reads it back with
includedData=fulfillmentAvailability. `x-amz-access-token` auth; 5 requests/s with a burst of 10 per
operation, 429 QuotaExceeded beyond; `ACCEPTED` or `INVALID` with `issues`. An unknown SKU is accepted (the
quantity waits for the listing) but getListingsItem answers 404 for it.
"""
from __future__ import annotations

import uuid
from typing import Any, Optional

from flask import Blueprint, Response, jsonify, request

from .common import Replies, arrived, fault_reply, limiter, record, reflection_delay, state

bp = Blueprint("amazon", __name__, url_prefix="/amazon/listings/2021-08-01/items")

JAPAN = "A1VC38T7YXB528"
PATH = "/attributes/fulfillment_availability"


def _errors(status: int, code: str, message: str, headers: Optional[dict] = None) -> Response:
    response = jsonify({"errors": [{"code": code, "message": message, "details": ""}]})
    response.status_code = status
    response.headers["x-amzn-RateLimit-Limit"] = "5.0"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


REPLIES = Replies(
    auth_wrong=lambda: _errors(403, "Unauthorized", "The access token you provided is revoked, malformed or invalid."),
    auth_expired=lambda: _errors(403, "Unauthorized", "The access token you provided has expired."),
    maintenance=lambda: _errors(503, "ServiceUnavailable", "Service temporarily unavailable. Please try again later."),
    server_error=lambda: _errors(500, "InternalFailure", "We encountered an internal error. Please try again."),
    gateway_timeout=lambda: _errors(504, "RequestTimeout", "The request timed out."),
    throttled=lambda wait: _errors(429, "QuotaExceeded", "You exceeded your quota for the requested resource.",
                                   {"Retry-After": str(max(1, round(wait)))}),
)


def _store(seller: str, api: str) -> tuple[Optional[dict], Optional[Response]]:
    token = request.headers.get("x-amz-access-token", "")
    store, issued = state().store_for_token("amazon", token) if token else (None, False)
    if store is None:
        return None, REPLIES.auth_wrong()
    failure = fault_reply(store, REPLIES, refreshed_token=not issued)
    if failure is not None:
        return store, failure
    if seller != store["credentials"]["seller_id"]:
        return store, _errors(403, "Unauthorized", "Access to requested resource is denied.")
    if JAPAN not in request.args.get("marketplaceIds", "").split(","):
        return store, _errors(400, "InvalidInput", "marketplaceIds must include A1VC38T7YXB528 (Amazon.co.jp).")
    allowed, wait = limiter().allow(store["id"], "amazon", api, arrived())
    if not allowed:
        return store, REPLIES.throttled(wait)
    return store, None


def _issue(message: str, code: str = "90220") -> dict[str, Any]:
    # [inferred] the issue code; the message names the attribute as Amazon's do.
    return {"code": code, "message": message, "severity": "ERROR", "attributeNames": ["fulfillment_availability"]}


def _quantity(body: Any) -> tuple[Optional[int], list[dict]]:
    if not isinstance(body, dict) or not isinstance(body.get("productType"), str):
        return None, [_issue("'productType' is required.", "100001")]
    patches = body.get("patches")
    if not isinstance(patches, list) or not patches:
        return None, [_issue("'patches' must hold at least one patch.", "100001")]
    quantity = None
    for patch in patches:
        if not isinstance(patch, dict) or patch.get("op") not in ("add", "replace", "merge", "delete"):
            return None, [_issue("'op' must be add, replace, merge or delete.", "100001")]
        if patch.get("path") != PATH:
            continue
        values = patch.get("value")
        if not isinstance(values, list) or not values or not isinstance(values[0], dict):
            return None, [_issue("'fulfillment_availability' must hold a value.")]
        value = values[0].get("quantity")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None, [_issue("The value for 'quantity' in 'fulfillment_availability' must be a non-negative integer.")]
        quantity = value
    if quantity is None:
        return None, [_issue("No change to 'fulfillment_availability' was sent.", "100001")]
    return quantity, []


@bp.patch("/<seller>/<sku>")
def patch_listings_item(seller: str, sku: str):
    store, failure = _store(seller, "patchListingsItem")
    if failure is not None:
        return record(store, "patchListingsItem", failure)
    quantity, issues = _quantity(request.get_json(silent=True))
    body = {"sku": sku, "status": "INVALID" if issues else "ACCEPTED", "submissionId": uuid.uuid4().hex,
            "issues": issues}
    if not issues:
        state().set_quantities(store["id"], [(sku, "", quantity)], delay=reflection_delay(store))
    response = jsonify(body)
    response.headers["x-amzn-RateLimit-Limit"] = "5.0"
    return record(store, "patchListingsItem", response, 1)


@bp.get("/<seller>/<sku>")
def get_listings_item(seller: str, sku: str):
    store, failure = _store(seller, "getListingsItem")
    if failure is not None:
        return record(store, "getListingsItem", failure)
    item = state().items_by_key(store["id"], [(sku, "")]).get((sku, ""))
    if item is None:
        return record(store, "getListingsItem", _errors(404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace {JAPAN}"), 1)
    body: dict[str, Any] = {"sku": sku, "summaries": [
        {"marketplaceId": JAPAN, "asin": f"B0{item['id']:08d}", "productType": "PRODUCT", "itemName": item["name"],
         "status": ["BUYABLE"] if item["quantity"] else ["DISCOVERABLE"]}]}
    included = request.args.get("includedData", "summaries").split(",")
    if "fulfillmentAvailability" in included:
        body["fulfillmentAvailability"] = [{"fulfillmentChannelCode": "DEFAULT", "quantity": item["quantity"]}]
    response = jsonify(body)
    response.headers["x-amzn-RateLimit-Limit"] = "5.0"
    return record(store, "getListingsItem", response, 1)
