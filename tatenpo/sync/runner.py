"""One push of one store as the worker and the shell both run it: take the store's lock (never two pushes of
one store at once), close the runs a dead worker left "running", push, give the lock back."""
from __future__ import annotations

from typing import Optional

from tatenpo.sync import push, queueing


def push_locked(store_id: int, trigger: str, *, wait_seconds: float) -> Optional[push.PushOutcome]:
    """Push the store's due entries under its lock; None when another push still held the lock after
    `wait_seconds`."""
    lock = queueing.store_lock(store_id)
    if not lock.acquire(blocking=True, blocking_timeout=wait_seconds):
        return None
    try:
        # Holding the lock, no other push of this store is alive: a run still "running" died with its worker.
        push.close_interrupted(store_id)
        return push.push_store(store_id, trigger, keepalive=queueing.keepalive(lock))
    finally:
        queueing.release_lock(lock)
