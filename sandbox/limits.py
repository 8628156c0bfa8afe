"""The malls' real rate limits, enforced per store (a real mall limits per shop / licence key).

GCRA (a token bucket without a timer): each call moves a "theoretical arrival time" one interval ahead; a
call that arrives earlier than burst allows is refused. A tolerance (a fifth of an interval by default,
SANDBOX_RATE_TOLERANCE) absorbs scheduling jitter on a busy machine; the real malls' windows are coarse too. Two
calls back to back are still refused. A call counts from when the server received it (request start).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Optional

# (mall, api) -> (requests per second, burst)
RATES: dict[tuple[str, str], tuple[float, int]] = {
    ("rakuten", "bulk-upsert"): (1.0, 1),
    ("rakuten", "bulk-get"): (5.0, 1),
    ("rakuten", "single"): (1.0, 1),
    ("rakuten", "range"): (1.0, 1),
    ("yahoo", "setStock"): (1.0, 1),  # per URL
    ("yahoo", "getStock"): (1.0, 1),
    ("amazon", "patchListingsItem"): (5.0, 10),
    ("amazon", "getListingsItem"): (5.0, 10),
    # Order APIs (docs/malls/<mall>.md, "Orders API"): SP-API Orders v0 usage plans; 楽天 and Yahoo publish no
    # figure for their order APIs [inferred: one per second, like their stock APIs].
    ("rakuten", "searchOrder"): (1.0, 1),
    ("rakuten", "getOrder"): (1.0, 1),
    ("yahoo", "orderList"): (1.0, 1),
    ("yahoo", "orderInfo"): (1.0, 1),
    ("amazon", "getOrders"): (0.0167, 20),
    ("amazon", "getOrderItems"): (0.5, 30),
}

# Shopify: a leaky bucket of query cost (standard plan).
SHOPIFY_BUCKET = 1000.0
SHOPIFY_RESTORE_RATE = 100.0
# [inferred] Shopify documents a mutation as 10 points; a large input costs more in practice. The sandbox
# charges 10 + 1 per quantity for inventorySetQuantities and 1 + 1 per id for reads.
SHOPIFY_MUTATION_COST = 10
SHOPIFY_COST_PER_ITEM = 1


class Limiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tat: dict[tuple, float] = {}
        self._buckets: dict[int, tuple[float, float]] = {}  # store id -> (available, at)
        self.tolerance = float(os.environ.get("SANDBOX_RATE_TOLERANCE", "0.2"))

    def allow(self, store_id: int, mall: str, api: str, arrived: Optional[float] = None) -> tuple[bool, float]:
        """(allowed, seconds until the next call would be allowed). `arrived`: time.monotonic() at receipt."""
        rate, burst = RATES[(mall, api)]
        interval = 1.0 / rate
        key = (store_id, mall, api)
        now = arrived if arrived is not None else time.monotonic()
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            allowed_at = tat - (burst - 1) * interval
            if allowed_at > now + max(0.02, self.tolerance * interval):
                return False, allowed_at - now
            self._tat[key] = tat + interval
            return True, 0.0

    def shopify(self, store_id: int, cost: float) -> tuple[bool, float]:
        """Spend `cost` points if the bucket holds them. Returns (allowed, points available afterwards)."""
        now = time.monotonic()
        with self._lock:
            available, at = self._buckets.get(store_id, (SHOPIFY_BUCKET, now))
            available = min(SHOPIFY_BUCKET, available + (now - at) * SHOPIFY_RESTORE_RATE)
            # Same jitter tolerance as above, in points.
            if cost > available + self.tolerance * SHOPIFY_RESTORE_RATE * 0.2:
                self._buckets[store_id] = (available, now)
                return False, available
            available = max(0.0, available - cost)
            self._buckets[store_id] = (available, now)
            return True, available
