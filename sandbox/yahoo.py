"""Yahoo!ショッピング ストアAPI setStock / getStock at /yahoo/ShoppingWebService/V1/… (real paths).

Form-encoded `seller_id`, `item_code` (comma-separated, ≤1000, `code:subcode`), `quantity` (bare number sets,
`+`/`-` adds/subtracts); `Authorization: Bearer <token>`; 1 request/s per URL; XML `ResultSet` with a per-item
`ErrorCode`, request-level `<Error>`, 401 with `WWW-Authenticate` for a bad or expired token. Unknown codes
are accepted (parked). A reflection delay makes a new quantity visible only after N seconds.
"""
from __future__ import annotations

import re
from typing import Optional
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from .common import Replies, arrived, fault_reply, limiter, record, reflection_delay, state

bp = Blueprint("yahoo", __name__, url_prefix="/yahoo/ShoppingWebService/V1")

MAX_CODES = 1000
QUANTITY = re.compile(r"^[+-]?\d{1,6}$")
CODE = re.compile(r"^[0-9A-Za-z_-]{1,99}$")


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
    # [inferred] the code; Yahoo blocks bursts and answers with an Error document.
    return _error("Too many requests. Please wait and try again.", "ws-02", 429, {"Retry-After": str(max(1, round(wait)))})


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
    return _xml(
        f'<ResultSet totalResultsAvailable="{n}" totalResultsReturned="{n}" firstResultPosition="1">'
        + "".join(results) + "</ResultSet>"
    )


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
    results, changes = [], []
    for (code, sub), text in zip(codes, quantities):
        text = text.strip()
        if not QUANTITY.match(text):
            results.append(_result(code, sub, error="st-02104"))
            continue
        known = current.get((code, sub))
        base = 0
        if known:
            base = known["pending_quantity"] if known["pending_quantity"] is not None else known["quantity"]
        value = base + int(text) if text[0] in "+-" else int(text)
        if not 0 <= value <= 999999:
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
    results = []
    for code, sub in codes:
        item = found.get((code, sub))
        # [inferred] an unknown code comes back with an ErrorCode and no Quantity.
        results.append(_result(code, sub, item["quantity"]) if item else _result(code, sub, error="st-02103"))
    return record(store, "getStock", _result_set(results), len(codes))
