"""Pacing to a mall's rate limit, shared by every process that talks to the same mall account.

GCRA in Redis (one key per account and API; Redis' own clock, so several machines agree): each call reserves
the next free slot and sleeps until it. A reservation is made before sleeping, so concurrent workers queue
up instead of bursting. Without Redis (a script, a unit test) the same algorithm runs in-process.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Optional

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Stay a little under the published ceiling: the malls count in windows we cannot see, and a 429 costs far
# more than 3 % of throughput.
MARGIN = 0.03

_RESERVE = """
pcall(redis.replicate_commands)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost * interval
local wait = new_tat - burst * interval - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return string.format('%.6f', wait)
"""


def account_key(mall: str, *identity: str) -> str:
    """A stable, secret-free name for one mall account (hash of what identifies it)."""
    digest = hashlib.sha256("\x1f".join(identity).encode()).hexdigest()[:16]
    return f"tatenpo:pace:{mall}:{digest}"


class Pacer:
    def __init__(self, redis=None, margin: float = MARGIN) -> None:
        self.redis = redis
        self.margin = margin
        self._script = redis.register_script(_RESERVE) if redis is not None else None
        self._lock = threading.Lock()
        self._local: dict[str, float] = {}

    def reserve(self, key: str, rate: float, burst: float = 1, cost: float = 1) -> float:
        """Reserve `cost` units at `rate` units/s (bucket of `burst` units); seconds to wait before calling."""
        interval = 1.0 / (rate * (1.0 - self.margin))
        if self._script is not None:
            try:
                return float(self._script(keys=[key], args=[interval, burst, cost]))
            except RedisError:
                # Redis is away: keep pacing within this process rather than fail the push (or hammer the mall).
                log.warning("pacing falls back to this process: Redis is unavailable")
        with self._lock:
            now = time.monotonic()
            tat = max(self._local.get(key, 0.0), now)
            new_tat = tat + cost * interval
            self._local[key] = new_tat
            return max(0.0, new_tat - burst * interval - now)

    def wait(self, key: str, rate: float, burst: float = 1, cost: float = 1) -> float:
        delay = self.reserve(key, rate, burst, cost)
        if delay > 0:
            time.sleep(delay)
        return delay

    def hold(self, key: str, seconds: float, rate: float) -> None:
        """The mall said "slow down" for `seconds`: push every later reservation back (best effort)."""
        if seconds <= 0:
            return
        interval = 1.0 / (rate * (1.0 - self.margin))
        # One reservation costing seconds/interval units moves the slot that far ahead for everyone.
        self.reserve(key, rate, burst=1, cost=seconds / interval)


def sleep_backoff(attempt: int, base: float, retry_after: Optional[float] = None, cap: float = 60.0) -> float:
    delay = retry_after if retry_after is not None else min(cap, base * (2 ** attempt))
    time.sleep(delay)
    return delay
