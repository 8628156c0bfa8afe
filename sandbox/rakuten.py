"""楽天 RMS Inventory API 2.0 at /rakuten/es/2.0/inventories/… (real paths; the base URL is the only difference).

ESA auth (Authorization: ESA base64(serviceSecret:licenseKey)); bodies as `Content-Type: application/json`;
bulk-upsert 1–400 at 1 req/s answering 204; bulk-get 1–1000 at 5 req/s; single get/put/delete;
bulk-get/range. Validation errors use the real error JSON (IE0002 invalid value, IE0003 out of range, IE0004
length; GE0014 not found); a wrong or expired key is 401 {"Results": {"errorCode": "ES01-01", "message":
"Un-Authorised"}}. Sources: docs/malls/rakuten.md.
Unknown items are parked on upsert (accepted, not shown), as the real API does.
"""
from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from flask import Blueprint, Response, jsonify, request

from . import catalog, listing_csv, order_mails
from .common import Replies, arrived, fault_reply, limiter, record, reflection_delay, state
from .malls import ListingFile, SandboxMall

bp = Blueprint("rakuten", __name__, url_prefix="/rakuten/es/2.0/inventories")

JST = timezone(timedelta(hours=9))
MANAGE_NUMBER = re.compile(r"^[0-9a-z_-]{1,32}$")
MAX_UPSERT = 400
MAX_GET = 1000
MAX_RANGE = 1000


def _errors(status: int, *errors: tuple[str, str, Optional[str]]) -> Response:
    body = {"errors": [
        {"code": code, "message": message, **({"metadata": {"propertyPath": path}} if path else {})}
        for code, message, path in errors
    ]}
    response = jsonify(body)
    response.status_code = status
    return response


def _throttled(wait: float) -> Response:
    # [inferred] RMS answers 429; the code and message are not published.
    response = _errors(429, ("GE0015", "Too many requests. Please try again later.", None))
    response.headers["Retry-After"] = str(max(1, round(wait)))
    return response


def _unauthorised() -> Response:
    # RMS's answer to a wrong serviceSecret / licenseKey and to an expired licenseKey alike: 401 with errorCode
    # ES01-01 "Un-Authorised" (docs/malls/rakuten.md: the shops' tools quote it for both causes).
    response = jsonify({"Results": {"errorCode": "ES01-01", "message": "Un-Authorised"}})
    response.status_code = 401
    return response


REPLIES = Replies(
    auth_wrong=_unauthorised,
    auth_expired=_unauthorised,
    maintenance=lambda: _errors(503, ("GE0012", "The system is under maintenance.", None)),  # [inferred] code
    server_error=lambda: _errors(500, ("GE0099", "Internal server error.", None)),  # [inferred] code
    gateway_timeout=lambda: _errors(504, ("GE0099", "Gateway timeout.", None)),  # [inferred] code
    throttled=_throttled,
)


def _store() -> tuple[Optional[dict], Optional[Response]]:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    store = None
    if scheme == "ESA" and token:
        try:
            secret, _, key = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            secret = key = ""
        if secret and key:
            store = state().find_store("rakuten", service_secret=secret, license_key=key)
    if store is None:
        return None, REPLIES.auth_wrong()
    return store, fault_reply(store, REPLIES)


def _limited(store: dict, api: str) -> Optional[Response]:
    allowed, wait = limiter().allow(store["id"], "rakuten", api, arrived())
    return None if allowed else _throttled(wait)


def _begin(api: str, with_body: bool = True) -> tuple[Optional[dict], Any, Optional[Response]]:
    """(store, JSON body, failure) for a call: auth and faults, then the rate limit, then the body."""
    store, failure = _store()
    if failure is None:
        failure = _limited(store, api)
    body = None
    if failure is None and with_body:
        body, failure = _json_body()
    return store, body, failure


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, JST).isoformat(timespec="seconds")


def _inventory(item: dict) -> dict[str, Any]:
    return {"manageNumber": item["code"], "variantId": item["variant"], "quantity": item["quantity"],
            "created": _time(item["created"]), "updated": _time(item["updated"])}


def _json_body() -> tuple[Any, Optional[Response]]:
    # [inferred] RMS takes a body labelled exactly `Content-Type: application/json` (the Inventory API 2.0 request
    # header); the sandbox refuses another label, charset included, so a client that sends one is caught here.
    if request.headers.get("Content-Type", "") != "application/json":
        return None, _errors(415, ("IE0001", "Content-Type must be application/json.", None))
    body = request.get_json(silent=True)
    if body is None:
        return None, _errors(400, ("IE0002", "The request body is not valid JSON.", None))
    return body, None


def _check_ids(entry: Any, path: str, errors: list) -> Optional[tuple[str, str]]:
    if not isinstance(entry, dict):
        errors.append(("IE0002", "must be an object", path))
        return None
    manage, variant = entry.get("manageNumber"), entry.get("variantId")
    ok = True
    if not isinstance(manage, str) or not manage:
        errors.append(("IE0002", "manageNumber must not be empty", f"{path}.manageNumber"))
        ok = False
    elif len(manage.encode("utf-8")) > 32:
        errors.append(("IE0004", "manageNumber must be at most 32 bytes", f"{path}.manageNumber"))
        ok = False
    elif not MANAGE_NUMBER.match(manage.lower()):
        errors.append(("IE0002", "manageNumber may hold only 0-9 a-z - _", f"{path}.manageNumber"))
        ok = False
    if not isinstance(variant, str) or not variant:
        errors.append(("IE0002", "variantId must not be empty", f"{path}.variantId"))
        ok = False
    elif len(variant.encode("utf-8")) > 32:
        errors.append(("IE0004", "variantId must be at most 32 bytes", f"{path}.variantId"))
        ok = False
    return (manage.lower(), variant) if ok else None


def _check_quantity(entry: dict, current: int, path: str, errors: list) -> Optional[int]:
    mode, quantity = entry.get("mode"), entry.get("quantity")
    if mode not in ("ABSOLUTE", "RELATIVE"):
        errors.append(("IE0002", "mode must be ABSOLUTE or RELATIVE", f"{path}.mode"))
        return None
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        errors.append(("IE0002", "quantity must be an integer", f"{path}.quantity"))
        return None
    result = quantity if mode == "ABSOLUTE" else current + quantity
    if mode == "ABSOLUTE" and not 0 <= quantity <= 99999 or not 0 <= result <= 99999:
        errors.append(("IE0003", "quantity must be between 0 and 99999", f"{path}.quantity"))
        return None
    return result


@bp.post("/bulk-upsert")
def bulk_upsert():
    store, body, failure = _begin("bulk-upsert")
    if failure is not None:
        return record(store, "bulk-upsert", failure)
    entries = body.get("inventories") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_UPSERT:
        return record(store, "bulk-upsert", _errors(400, ("IE0003", f"inventories must hold 1 to {MAX_UPSERT} items", "inventories")))
    errors: list = []
    keys = [_check_ids(e, f"inventories[{i}]", errors) for i, e in enumerate(entries)]
    current = state().items_by_key(store["id"], [k for k in keys if k])
    changes = []
    for i, (entry, key) in enumerate(zip(entries, keys)):
        if key is None:
            continue
        known = current.get(key)
        quantity = _check_quantity(entry, known["quantity"] if known else 0, f"inventories[{i}]", errors)
        if quantity is not None:
            changes.append((key[0], key[1], quantity))
    if errors:  # the whole request is refused; nothing changes
        return record(store, "bulk-upsert", _errors(400, *errors), len(entries))
    state().set_quantities(store["id"], changes, delay=reflection_delay(store))
    return record(store, "bulk-upsert", Response(status=204), len(entries))


@bp.post("/bulk-get")
def bulk_get():
    store, body, failure = _begin("bulk-get")
    if failure is not None:
        return record(store, "bulk-get", failure)
    entries = body.get("inventories") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_GET:
        return record(store, "bulk-get", _errors(400, ("IE0003", f"inventories must hold 1 to {MAX_GET} items", "inventories")))
    errors: list = []
    keys = [_check_ids(e, f"inventories[{i}]", errors) for i, e in enumerate(entries)]
    if errors:
        return record(store, "bulk-get", _errors(400, *errors), len(entries))
    found = state().items_by_key(store["id"], keys)
    inventories = [_inventory(found[k]) for k in keys if k in found]
    return record(store, "bulk-get", jsonify({"inventories": inventories}), len(entries))


@bp.get("/bulk-get/range")
def bulk_get_range():
    store, _body, failure = _begin("range", with_body=False)
    if failure is not None:
        return record(store, "range", failure)
    try:
        low = int(request.args["minQuantity"])
        high = int(request.args["maxQuantity"])
    except (KeyError, ValueError):
        return record(store, "range", _errors(400, ("IE0002", "minQuantity and maxQuantity are required integers", "minQuantity")))
    items = [i for i in state().items(store["id"]) if low <= i["quantity"] <= high]
    if len(items) > MAX_RANGE:
        return record(store, "range", _errors(400, ("IE0116", "Too many results. Narrow the quantity range.", None)))
    items.sort(key=lambda i: i["updated"], reverse=True)
    return record(store, "range", jsonify({"inventories": [_inventory(i) for i in items]}))


@bp.route("/manage-numbers/<manage>/variants/<variant>", methods=["GET", "PUT", "DELETE"])
def single(manage: str, variant: str):
    store, body, failure = _begin("single", with_body=request.method == "PUT")
    if failure is not None:
        return record(store, "single", failure)
    errors: list = []
    key = _check_ids({"manageNumber": manage, "variantId": variant}, "", errors)
    if errors:
        return record(store, "single", _errors(400, *errors))
    known = state().items_by_key(store["id"], [key]).get(key)
    if request.method == "GET":
        if known is None:
            return record(store, "single", _errors(404, ("GE0014", "The inventory was not found.", None)))
        return record(store, "single", jsonify(_inventory(known)), 1)
    if request.method == "DELETE":
        if not state().delete_item(store["id"], *key):
            return record(store, "single", _errors(404, ("GE0014", "The inventory was not found.", None)))
        return record(store, "single", Response(status=204), 1)
    quantity = _check_quantity(body if isinstance(body, dict) else {}, known["quantity"] if known else 0, "", errors)
    if errors:
        return record(store, "single", _errors(400, *errors))
    state().set_quantities(store["id"], [(key[0], key[1], quantity)], delay=reflection_delay(store))
    return record(store, "single", Response(status=204), 1)


# The registry entry (sandbox.malls) ------------------------------------------------------------------------

RAKUTEN_SHOP_ID_BASE = 300_000  # 楽天 店舗ID are six digits; the sandbox's store id is added to this


def shop_id(store: dict) -> str:
    """楽天's 店舗ID, printed inside its order numbers (both stock routes are one 楽天市場 shop)."""
    return str(RAKUTEN_SHOP_ID_BASE + store["id"])


def _credentials(store_id: int, shop: str) -> dict[str, str]:
    return {"service_secret": f"SP{store_id}_{secrets.token_hex(8)}",
            "license_key": f"SL{store_id}_{secrets.token_hex(16)}"}


from .rakuten_orders import bp as orders_bp  # noqa: E402  (it uses this module's auth)

SANDBOX_MALLS = [SandboxMall(
    key="rakuten", name="楽天市場 (RMS API)", issue_credentials=_credentials,
    endpoint=lambda store, where: f"{where.public_url}/rakuten",
    identity=catalog.rakuten_identity,
    files=(ListingFile("normal-item", "normal-item.csv", listing_csv.rakuten_normal_item),),
    compose_mail=order_mails.rakuten_mail, compose_cancellation=order_mails.rakuten_cancellation,
    order_number=order_mails.rakuten_number, store_key=shop_id, buyer="楽天 太郎", blueprints=(bp, orders_bp),
)]
