"""The malls' own order statuses, for the sandbox's order APIs (sandbox/<mall>_orders.py) and its admin.

Every sandbox order has a plain status (ordered | shipped | cancelled: what moves the mall's stock) and the
mall's own status text, as its order API reports it. The admin sets either (POST
/_sandbox/stores/<id>/orders/<number>/status {"status": "300"} or {"status": "shipped"}); the plain status
follows from the mall's. Sources: docs/malls/<mall>.md, "Orders API".
"""
from __future__ import annotations

# mall → {the mall's status: the plain status it means}. The first of each plain status is its default.
STATUSES: dict[str, dict[str, str]] = {
    # RMS 受注API orderProgress: 100 注文確認待ち, 200 楽天処理中, 300 発送待ち, 400 変更確定待ち, 500 発送済,
    # 600 支払手続き中, 700 支払手続き済, 800 キャンセル確定待ち, 900 キャンセル確定.
    "rakuten": {"100": "ordered", "200": "ordered", "300": "ordered", "400": "ordered", "500": "shipped",
                "600": "shipped", "700": "shipped", "900": "cancelled", "800": "cancelled"},
    # Yahoo!ショッピング orderInfo OrderStatus: 1 予約中, 2 処理中, 3 保留, 4 キャンセル, 5 完了.
    "yahoo": {"2": "ordered", "1": "ordered", "3": "ordered", "5": "shipped", "4": "cancelled"},
    # SP-API Orders v0 OrderStatus.
    "amazon": {"Unshipped": "ordered", "Pending": "ordered", "PartiallyShipped": "ordered", "Shipped": "shipped",
               "Canceled": "cancelled"},
    # Shopify: the order's displayFulfillmentStatus, or cancelled (cancelledAt set).
    "shopify": {"UNFULFILLED": "ordered", "FULFILLED": "shipped", "CANCELLED": "cancelled"},
}
PLAIN = ("ordered", "shipped", "cancelled")


def default(mall: str, plain: str) -> str:
    """The mall's status for a plain one ('' for a mall without an order API in the sandbox)."""
    for own, meaning in STATUSES.get(mall, {}).items():
        if meaning == plain:
            return own
    return ""


def resolve(mall: str, status: str) -> tuple[str, str] | None:
    """(plain status, the mall's status) for what the admin asked, or None when the mall has no such status."""
    known = STATUSES.get(mall, {})
    if status in known:
        return known[status], status
    if status in PLAIN:
        return status, default(mall, status)
    return None


def choices(mall: str) -> list[str]:
    return list(STATUSES.get(mall, {})) or list(PLAIN)
