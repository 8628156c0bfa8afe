"""Amazon SP-API Listings Items 2021-08-01 at /amazon/listings/2021-08-01/items/<sellerId>/<sku> (real paths).

patchListingsItem sets `fulfillment_availability`: `merge` changes only the fields sent, `replace` makes the
value the whole entry (a lead_time_to_ship_max_days or restock_date left out is gone); getListingsItem reads
it back with includedData=fulfillmentAvailability (the quantity) or attributes (the whole entry). `x-amz-access-token` auth; 5 requests/s with a burst of 10 per
operation, 429 QuotaExceeded beyond; `ACCEPTED` or `INVALID` with `issues`. An unknown SKU is accepted (the
quantity waits for the listing) but getListingsItem answers 404 for it.
"""
from __future__ import annotations

import secrets
import uuid
from typing import Any, Optional

from flask import Blueprint, Response, jsonify, request

from . import listing_csv, oauth, order_mails
from .common import Replies, arrived, fault_reply, limiter, record, reflection_delay, state
from .malls import ListingFile, SandboxMall

bp = Blueprint("amazon", __name__, url_prefix="/amazon/listings/2021-08-01/items")

JAPAN = "A1VC38T7YXB528"
PATH = "/attributes/fulfillment_availability"


def _errors(status: int, code: str, message: str, headers: Optional[dict] = None, details: str = "") -> Response:
    response = jsonify({"errors": [{"code": code, "message": message, "details": details}]})
    response.status_code = status
    response.headers["x-amzn-RateLimit-Limit"] = "5.0"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


# An LWA token SP-API does not take: 403, the generic message, the reason only in `details` (as real answers
# show: github.com/amzn/selling-partner-api-models/issues/230, selling-partner-api-docs/issues/2147).
DENIED = "Access to requested resource is denied."
REPLIES = Replies(
    auth_wrong=lambda: _errors(403, "Unauthorized", DENIED,
                               details="The access token you provided is revoked, malformed or invalid."),
    auth_expired=lambda: _errors(403, "Unauthorized", DENIED, details="The access token you provided has expired."),
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
        return store, _errors(403, "Unauthorized", DENIED)
    if JAPAN not in request.args.get("marketplaceIds", "").split(","):
        return store, _errors(400, "InvalidInput", "marketplaceIds must include A1VC38T7YXB528 (Amazon.co.jp).")
    allowed, wait = limiter().allow(store["id"], "amazon", api, arrived())
    if not allowed:
        return store, REPLIES.throttled(wait)
    return store, None


def _issue(message: str, code: str = "90220") -> dict[str, Any]:
    # [inferred] the issue code; the message names the attribute as Amazon's do.
    return {"code": code, "message": message, "severity": "ERROR", "attributeNames": ["fulfillment_availability"]}


# The fields of a fulfillment_availability entry the sandbox keeps besides the quantity.
KEPT = ("lead_time_to_ship_max_days", "restock_date")


def _availability(body: Any) -> tuple[Optional[dict], list[dict]]:
    """(the fulfillment_availability change: op, quantity and the other fields sent, issues)."""
    if not isinstance(body, dict) or not isinstance(body.get("productType"), str):
        return None, [_issue("'productType' is required.", "100001")]
    patches = body.get("patches")
    if not isinstance(patches, list) or not patches:
        return None, [_issue("'patches' must hold at least one patch.", "100001")]
    change = None
    for patch in patches:
        if not isinstance(patch, dict) or patch.get("op") not in ("add", "replace", "merge", "delete"):
            return None, [_issue("'op' must be add, replace, merge or delete.", "100001")]
        if patch.get("path") != PATH:
            continue
        values = patch.get("value")
        if not isinstance(values, list) or not values or not isinstance(values[0], dict):
            return None, [_issue("'fulfillment_availability' must hold a value.")]
        value = values[0]
        # merge finds the entry to change by its selector, which must not be empty (the Merge a listing tutorial).
        if patch["op"] == "merge" and not value.get("fulfillment_channel_code"):
            return None, [_issue("'fulfillment_channel_code' is required to merge 'fulfillment_availability'.")]
        quantity = value.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            return None, [_issue("The value for 'quantity' in 'fulfillment_availability' must be a non-negative integer.")]
        change = {"op": patch["op"], "quantity": quantity, **{k: value[k] for k in KEPT if k in value}}
    if change is None:
        return None, [_issue("No change to 'fulfillment_availability' was sent.", "100001")]
    return change, []


def _kept_fields(change: dict, extra: dict) -> dict:
    """The item's other fulfillment fields after the patch: merge changes only what it sends; replace (and add)
    make the value sent the whole entry, so a field left out is gone."""
    if change["op"] == "merge":
        return {**{k: extra[k] for k in KEPT if k in extra}, **{k: change[k] for k in KEPT if k in change}}
    return {k: change[k] for k in KEPT if k in change}


@bp.patch("/<seller>/<sku>")
def patch_listings_item(seller: str, sku: str):
    store, failure = _store(seller, "patchListingsItem")
    if failure is not None:
        return record(store, "patchListingsItem", failure)
    change, issues = _availability(request.get_json(silent=True))
    body = {"sku": sku, "status": "INVALID" if issues else "ACCEPTED", "submissionId": uuid.uuid4().hex,
            "issues": issues}
    if not issues:
        state().set_quantities(store["id"], [(sku, "", change["quantity"])], delay=reflection_delay(store))
        item = state().items_by_key(store["id"], [(sku, "")]).get((sku, ""))
        if item is not None:
            kept = _kept_fields(change, item["extra"])
            state().set_extra(store["id"], sku, "", {k: kept.get(k) for k in KEPT})
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
    if "attributes" in included:  # the offer as the seller set it, with its handling time
        entry = {"fulfillment_channel_code": "DEFAULT", "quantity": item["quantity"], "marketplace_id": JAPAN,
                 **{k: item["extra"][k] for k in KEPT if item["extra"].get(k) is not None}}
        body["attributes"] = {"fulfillment_availability": [entry]}
    response = jsonify(body)
    response.headers["x-amzn-RateLimit-Limit"] = "5.0"
    return record(store, "getListingsItem", response, 1)


# The registry entry (sandbox.malls) ------------------------------------------------------------------------

def _credentials(store_id: int, shop: str) -> dict[str, str]:
    return {"seller_id": f"A{store_id:04d}SANDBOX", "access_token": "Atza|" + secrets.token_hex(16),
            "client_id": f"amzn1.application-oa2-client.sandbox{store_id}", "client_secret": secrets.token_hex(10),
            "refresh_token": "Atzr|" + secrets.token_hex(12),
            # The SP-API app's ID, which the Seller Central consent page names (sandbox/oauth.py).
            "application_id": f"amzn1.sp.solution.{uuid.uuid4()}"}


def _identity(store_id: int, i: int, n: int, base: str, sku: str, opt: str) -> dict:
    # Merchant-fulfilled offers carry a handling time (出荷作業日数); a quantity update must leave it alone.
    return {"code": sku, "variant": "", "extra": {"lead_time_to_ship_max_days": 1 + i % 3}}


from .amazon_orders import bp as orders_bp  # noqa: E402  (it uses this module's replies)

SANDBOX_MALLS = [SandboxMall(
    key="amazon", name="Amazon.co.jp", issue_credentials=_credentials,
    endpoint=lambda store, where: f"{where.public_url}/amazon", identity=_identity,
    files=(ListingFile("report", "All_Listings_Report.txt", listing_csv.amazon_report),),
    compose_mail=order_mails.amazon_mail, order_number=order_mails.amazon_number,
    store_key=lambda store: store["credentials"]["seller_id"], buyer="山田 太郎", blueprints=(bp, oauth.amazon_bp, orders_bp),
)]
