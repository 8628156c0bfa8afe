"""One Redis connection per process, and the RQ queues on it."""
from __future__ import annotations

from functools import lru_cache

from flask import current_app
from redis import Redis
from rq import Queue

# In the order a worker takes them. `sync-deferred` holds the pushes that wait minutes for the mall's result
# log (楽天 FTP): `make run` gives it a worker of its own, so that such a wait never holds up the other
# stores' pushes (即時同期 within seconds) or an import.
QUEUE_NAMES = ("sync", "imports", "default", "sync-deferred")
DEFERRED_QUEUE = "sync-deferred"


@lru_cache(maxsize=8)
def _connect(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)


def redis() -> Redis:
    return _connect(current_app.config["REDIS_URL"])


def queue(name: str = "default") -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis())
