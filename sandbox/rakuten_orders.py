"""楽天 RMS 受注API (楽天ペイ) at /rakuten/es/2.0/order/searchOrder and …/getOrder (real paths), ESA auth like the
Inventory API. Errors come inside `MessageModelList` with HTTP 200 (a bad date range, more than 63 days, more
than 100 numbers); only auth, faults and the rate limit use HTTP statuses. Sources: docs/malls/rakuten.md,
"Orders API".

searchOrder: dateType 1 (注文日) — the sandbox keeps no other dates and refuses the others with a message —
startDatetime/endDatetime `yyyy-MM-ddTHH:mm:ss+0900`, at most 63 days apart; orderProgressList; pagination
(PaginationRequestModel requestRecordsAmount 30–1000, requestPage). getOrder: orderNumberList of 1–100 and a
version; OrderModelList → PackageModelList → ItemModelList → SkuModelList (version 7 and later).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from math import ceil
from typing import Any, Optional

from flask import Blueprint, Response, jsonify

from .common import arrived, limiter, record, state
from .rakuten import JST, _json_body, _store, _throttled

bp = Blueprint("rakuten_orders", __name__, url_prefix="/rakuten/es/2.0/order")

MAX_DAYS = 63
MAX_NUMBERS = 100
PAGE_SIZES = (30, 1000)
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # 2026-11-30T10:00:00+0900
PROGRESS_NAMES = {100: "注文確認待ち", 200: "楽天処理中", 300: "発送待ち", 400: "変更確定待ち", 500: "発送済",
                  600: "支払手続き中", 700: "支払手続き済", 800: "キャンセル確定待ち", 900: "キャンセル確定"}


def _messages(kind: str, code: str, message: str) -> list[dict[str, str]]:
    return [{"messageType": kind, "messageCode": code, "message": message}]


def _refused(api: str, store: dict, code: str, message: str) -> Response:
    # HTTP 200 with the error in MessageModelList: the 受注API's way (docs/malls/rakuten.md). [inferred] codes.
    return record(store, api, jsonify({"MessageModelList": _messages("ERROR", code, message)}))


def _begin(api: str) -> tuple[Optional[dict], Any, Optional[Response]]:
    store, failure = _store()
    if failure is None:
        allowed, wait = limiter().allow(store["id"], "rakuten", api, arrived())
        failure = None if allowed else _throttled(wait)
    body = None
    if failure is None:
        body, failure = _json_body()
    return store, body, failure


def _when(value: Any) -> Optional[datetime]:
    try:
        return datetime.strptime(value, DATE_FORMAT) if isinstance(value, str) else None
    except ValueError:
        return None


@bp.post("/searchOrder")
def search_order():
    store, body, failure = _begin("searchOrder")
    if failure is not None:
        return record(store, "searchOrder", failure)
    body = body if isinstance(body, dict) else {}
    if body.get("dateType") != 1:
        return _refused("searchOrder", store, "ORDER_EXT_API_SEARCH_ORDER_ERROR_003",
                        "dateType: the sandbox searches by 注文日 (1) only.")
    start, end = _when(body.get("startDatetime")), _when(body.get("endDatetime"))
    if start is None or end is None:
        return _refused("searchOrder", store, "ORDER_EXT_API_SEARCH_ORDER_ERROR_004",
                        "startDatetime and endDatetime must be yyyy-MM-ddTHH:mm:ss+0900.")
    if end < start:
        return _refused("searchOrder", store, "ORDER_EXT_API_SEARCH_ORDER_ERROR_005",
                        "endDatetime must not be before startDatetime.")
    if end - start > timedelta(days=MAX_DAYS):
        return _refused("searchOrder", store, "ORDER_EXT_API_SEARCH_ORDER_ERROR_006",
                        f"The search period must be within {MAX_DAYS} days.")
    progress = body.get("orderProgressList")
    if progress is not None and (not isinstance(progress, list) or any(p not in PROGRESS_NAMES for p in progress)):
        return _refused("searchOrder", store, "ORDER_EXT_API_SEARCH_ORDER_ERROR_007",
                        "orderProgressList holds unknown values.")
    paging = body.get("PaginationRequestModel") or {}
    size, page = paging.get("requestRecordsAmount", 1000), paging.get("requestPage", 1)
    if not isinstance(size, int) or not PAGE_SIZES[0] <= size <= PAGE_SIZES[1] or not isinstance(page, int) or page < 1:
        return _refused("searchOrder", store, "ORDER_EXT_API_SEARCH_ORDER_ERROR_008",
                        "requestRecordsAmount must be 30 to 1000 and requestPage at least 1.")
    found = []
    for order in state().orders(store["id"]):
        ordered_at = datetime.fromisoformat(order["ordered_at"])
        if start <= ordered_at <= end and (progress is None or int(order["mall_status"] or 100) in progress):
            found.append(order["number"])
    pages = max(1, ceil(len(found) / size))
    return record(store, "searchOrder", jsonify({
        "MessageModelList": _messages("INFO", "ORDER_EXT_API_SEARCH_ORDER_INFO_101", "注文検索に成功しました。"),
        "orderNumberList": found[(page - 1) * size:page * size],
        "PaginationResponseModel": {"totalRecordsAmount": len(found), "totalPages": pages, "requestPage": page},
    }))


@bp.post("/getOrder")
def get_order():
    store, body, failure = _begin("getOrder")
    if failure is not None:
        return record(store, "getOrder", failure)
    body = body if isinstance(body, dict) else {}
    numbers, version = body.get("orderNumberList"), body.get("version")
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_NUMBERS or not all(isinstance(n, str) for n in numbers):
        return _refused("getOrder", store, "ORDER_EXT_API_GET_ORDER_ERROR_001",
                        f"orderNumberList must hold 1 to {MAX_NUMBERS} order numbers.")
    if not isinstance(version, int) or version < 1:
        return _refused("getOrder", store, "ORDER_EXT_API_GET_ORDER_ERROR_002", "version is required.")
    orders = state().orders_by_number(store["id"], numbers)
    return record(store, "getOrder", jsonify({
        "MessageModelList": _messages("INFO", "ORDER_EXT_API_GET_ORDER_INFO_101", "受注情報取得に成功しました。"),
        "OrderModelList": [_order_model(order, version) for order in orders],
    }), len(numbers))


def _order_model(order: dict, version: int) -> dict[str, Any]:
    progress = int(order["mall_status"] or 100)
    items = []
    for n, line in enumerate(order["items"], start=1):
        item = {"itemDetailId": n, "itemName": line["title"], "itemNumber": line.get("item_number") or line["code"],
                "manageNumber": line["code"], "price": line["price"], "units": line["quantity"],
                "selectedChoice": "\n".join(f"{name}:{value}" for name, value in line.get("choices") or [])}
        if version >= 7:  # the SKU fields came with the SKU migration (version 7)
            item["SkuModelList"] = [{"variantId": line["variant"], "merchantDefinedSkuId": line.get("sku") or None,
                                     "skuInfo": None}]
        items.append(item)
    return {
        "orderNumber": order["number"],
        "orderProgress": progress,
        "orderDatetime": datetime.fromisoformat(order["ordered_at"]).astimezone(JST).strftime(DATE_FORMAT),
        "PackageModelList": [{"basketId": 1, "ItemModelList": items}],
    }
