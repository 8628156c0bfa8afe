"""What the connectors that read a mall's order API share (rakuten_orders, yahoo_orders, amazon_orders,
shopify_orders). Each connector that can offers

    read_orders(since, *, open_numbers=(), known=()) -> list[MallOrder]

the orders the mall changed at or after `since` (naive UTC), each as tatenpo.orders.mall_orders.MallOrder.
`open_numbers`: the orders Tatenpo still holds as received, for a mall whose search cannot find orders by their
last change (楽天 searches by 注文日: those are read again by number). `known`: orders whose lines Tatenpo already
has, all linked: a mall that charges a call per order for its lines (Amazon getOrderItems) may leave their lines
out (an empty tuple). A failure raises MallError with the mall's own reason. Connectors never touch the database.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

JST = timezone(timedelta(hours=9))


def can_read_orders(connector_class) -> bool:
    return callable(getattr(connector_class, "read_orders", None))


def naive_utc(value: Optional[datetime]) -> Optional[datetime]:
    """A mall's aware time as the models keep times (naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def aware_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_time(text: Optional[str]) -> Optional[datetime]:
    """ISO 8601 as the malls print it (2026-11-30T10:00:00Z, …+09:00, …+0900) → naive UTC; None when absent or
    unreadable (the order is still applied; only its times stay unknown)."""
    if not text:
        return None
    text = text.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # +0900 → +09:00
        text = text[:-2] + ":" + text[-2:]
    try:
        return naive_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]
