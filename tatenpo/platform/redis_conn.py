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
# `make run`'s workers: the first takes imports before anything else, so a busy sync queue never starves an
# import; the others take no imports, so imports never hold every worker the stores' pushes need.
IMPORT_WORKER_QUEUES = ("imports", "sync", "default")
SYNC_WORKER_QUEUES = ("sync", "default")


def worker_queues(sync_workers: int) -> list[tuple[str, ...]]:
    """The queues of each worker `make run` starts: `sync_workers` (SYNC_WORKERS) workers for the sync queue,
    the first of them taking imports first, and one for sync-deferred."""
    return [IMPORT_WORKER_QUEUES] + [SYNC_WORKER_QUEUES] * (max(1, sync_workers) - 1) + [(DEFERRED_QUEUE,)]


@lru_cache(maxsize=8)
def _connect(url: str, timeout: float) -> Redis:
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 5),
                          health_check_interval=30)


def redis() -> Redis:
    # A web process asks with a short timeout (`make run` gives it 2 s): a Redis that hangs must not hang a page.
    return _connect(current_app.config["REDIS_URL"], float(current_app.config["REDIS_SOCKET_TIMEOUT_SECONDS"]))


def queue(name: str = "default") -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis())
