"""Yahoo!ショッピング ストアAPI setStock / getStock at /yahoo/ShoppingWebService/V1/… (real paths).

Form-encoded `seller_id`, `item_code` (comma-separated, ≤1000, `code:subcode`, letters, digits and hyphen),
`quantity` (-999999999～999999999; a bare number sets, `+`/`-` adds/subtracts); `Authorization: Bearer
<token>`; 1 request/s per URL; XML `ResultSet` with a per-item `ErrorCode` (HTTP 207 when some item failed; the
others are applied), st-02103 for a code sent twice, request-level `<Error>`, 401 with `WWW-Authenticate` for a
bad or expired token, 403 "Your Request was Forbidden" over the request quota. Unknown codes are accepted
(parked). A reflection delay makes a new quantity visible only after N seconds. Sources: docs/malls/yahoo.md.
"""
from __future__ import annotations

import re
import secrets
from typing import Optional
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from . import listing_csv, oauth, order_mails
from .common import Replies, arrived, fault_reply, limiter, record, reflection_delay, state
from .malls import ListingFile, SandboxMall

bp = Blueprint("yahoo", __name__, url_prefix="/yahoo/ShoppingWebService/V1")

MAX_CODES = 1000
# developer.yahoo.co.jp/webapi/shopping/setStock.html: quantity -999999999～999999999; item_code and sub-code
# 半角英数字 and ハイフン, at most 99 characters each.
QUANTITY = re.compile(r"^[+-]?\d{1,9}$")
MAX_QUANTITY = 999_999_999
CODE = re.compile(r"^[0-9A-Za-z-]{1,99}$")


def _xml(body: str, status: int = 200, headers: Optional[dict] = None) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body, status=status,
                    content_type="application/xml; charset=utf-8", headers=headers or {})


def _error(message: str, code: str, status: int = 400, headers: Optional[dict] = None) -> Response:
    return _xml(f'<Error xmlns="urn:yahoo:api"><Message>{escape(message)}</Message><Code>{code}</Code></Error>',
                status, headers)


def _unauthorized(description: str) -> Response:
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return _xml(f"<Error><Message>{escape(challenge)}</Message></Error>", 401, {"WWW-Authenticate": challenge})


def _throttled(wait: float) -> Response:
    # Over the quota Yahoo answers 403 with this message (Yahoo!ショッピングAPI FAQ, developer.yahoo.co.jp/webapi/
    # shopping/faq.html), not 429; the sandbox says it for its per-second limit too.
    return _xml("<Error><Message>Your Request was Forbidden</Message></Error>", 403,
                {"Retry-After": str(max(1, round(wait)))})


REPLIES = Replies(
    auth_wrong=lambda: _unauthorized("invalid token"),
    auth_expired=lambda: _unauthorized("expired token"),
    maintenance=lambda: _error("ただいまメンテナンス中です。", "ws-03", 503),  # [inferred] code
    server_error=lambda: _error("Internal Server Error", "ws-01", 500),  # [inferred] code
    gateway_timeout=lambda: _error("Gateway Timeout", "ws-01", 504),  # [inferred] code
    throttled=_throttled,
)


def _store(api: str) -> tuple[Optional[dict], Optional[Response]]:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token:
        return None, REPLIES.auth_wrong()
    store, issued = state().store_for_token("yahoo", token)
    if store is None:
        return None, REPLIES.auth_wrong()
    failure = fault_reply(store, REPLIES, refreshed_token=not issued)
    if failure is not None:
        return store, failure
    if request.form.get("seller_id") != store["credentials"]["seller_id"]:
        return store, _error("seller_id is invalid.", "st-02100")  # [inferred] code
    allowed, wait = limiter().allow(store["id"], "yahoo", api, arrived())
    if not allowed:
        return store, _throttled(wait)
    return store, None


def _codes() -> tuple[list[tuple[str, str]], Optional[Response]]:
    raw = request.form.get("item_code", "")
    parts = raw.split(",") if raw else []
    if not parts or len(parts) > MAX_CODES:
        return [], _error(f"item_code({raw[:50]}) is invalid format.", "st-02101")
    codes = []
    for part in parts:
        code, _, sub = part.partition(":")
        if not CODE.match(code) or (sub and not CODE.match(sub)):
            return [], _error(f"item_code({part}) is invalid format.", "st-02101")
        codes.append((code, sub))
    return codes, None


def _result_set(results: list[str]) -> Response:
    n = len(results)
    # 207 Multi-Status when some item carries an ErrorCode: the others went through.
    return _xml(
        f'<ResultSet totalResultsAvailable="{n}" totalResultsReturned="{n}" firstResultPosition="1">'
        + "".join(results) + "</ResultSet>", 207 if any("<ErrorCode>" in r for r in results) else 200
    )


def _duplicates(codes: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Codes sent more than once in one request: each occurrence answers st-02103."""
    seen: set[tuple[str, str]] = set()
    return {c for c in codes if c in seen or seen.add(c)}


def _result(code: str, sub: str, quantity: Optional[int] = None, error: Optional[str] = None) -> str:
    parts = [f"<ItemCode>{escape(code)}</ItemCode>"]
    if sub:
        parts.append(f"<SubCode>{escape(sub)}</SubCode>")
    if quantity is not None:
        parts.append(f"<Quantity>{quantity}</Quantity>")
    if error:
        parts.append(f"<ErrorCode>{error}</ErrorCode>")
    return "<Result>" + "".join(parts) + "</Result>"


@bp.post("/setStock")
def set_stock():
    store, failure = _store("setStock")
    if failure is not None:
        return record(store, "setStock", failure)
    codes, bad = _codes()
    if bad is not None:
        return record(store, "setStock", bad)
    quantities = request.form.get("quantity", "").split(",")
    if len(quantities) != len(codes):
        return record(store, "setStock", _error("quantity count does not match item_code count.", "st-02102"), len(codes))
    current = state().items_by_key(store["id"], codes)
    twice = _duplicates(codes)
    refused = set(store["faults"].get("item_error") or [])
    results, changes = [], []
    for (code, sub), text in zip(codes, quantities):
        text = text.strip()
        if (code, sub) in twice:
            results.append(_result(code, sub, error="st-02103"))
            continue
        if not QUANTITY.match(text) or (f"{code}:{sub}" if sub else code) in refused:
            results.append(_result(code, sub, error="st-02104"))
            continue
        known = current.get((code, sub))
        base = 0
        if known:
            base = known["pending_quantity"] if known["pending_quantity"] is not None else known["quantity"]
        value = base + int(text) if text[0] in "+-" else int(text)
        if not 0 <= value <= MAX_QUANTITY:
            results.append(_result(code, sub, error="st-02104"))
            continue
        changes.append((code, sub, value))
        results.append(_result(code, sub, value))
    state().set_quantities(store["id"], changes, delay=reflection_delay(store))
    return record(store, "setStock", _result_set(results), len(codes))


@bp.post("/getStock")
def get_stock():
    store, failure = _store("getStock")
    if failure is not None:
        return record(store, "getStock", failure)
    codes, bad = _codes()
    if bad is not None:
        return record(store, "getStock", bad)
    found = state().items_by_key(store["id"], codes)
    twice = _duplicates(codes)
    results = []
    for code, sub in codes:
        item = found.get((code, sub))
        if (code, sub) in twice:
            results.append(_result(code, sub, error="st-02103"))
        else:
            # [inferred] an unknown code comes back without a Quantity.
            results.append(_result(code, sub, item["quantity"]) if item else _result(code, sub))
    return record(store, "getStock", _result_set(results), len(codes))


# The registry entry (sandbox.malls) ------------------------------------------------------------------------

def _credentials(store_id: int, shop: str) -> dict[str, str]:
    return {"seller_id": f"snbx-{store_id}", "access_token": secrets.token_hex(16), "client_id": f"dj00sandbox{store_id}",
            "client_secret": secrets.token_hex(10), "refresh_token": "sbx-rt-" + secrets.token_hex(12)}


def _identity(store_id: int, i: int, n: int, base: str, sku: str, opt: str) -> dict:
    return {"code": base.lower(), "variant": "" if not opt else sku.lower()}


from .yahoo_orders import bp as orders_bp  # noqa: E402  (it uses this module's replies)

SANDBOX_MALLS = [SandboxMall(
    key="yahoo", name="Yahoo!ショッピング", issue_credentials=_credentials,
    endpoint=lambda store, where: f"{where.public_url}/yahoo", identity=_identity,
    files=(ListingFile("quantity", "quantity.csv", listing_csv.yahoo_quantity),
           ListingFile("data", "data.csv", listing_csv.yahoo_data)),
    compose_mail=order_mails.yahoo_mail, order_number=order_mails.yahoo_number,
    store_key=lambda store: store["credentials"]["seller_id"], buyer="山田 太郎", blueprints=(bp, oauth.yahoo_bp, orders_bp),
)]
