"""When a store's push runs, and that only one runs at a time per store.

- 即時同期: after a transaction that changed the schedule commits, each touched store that has immediate
  sync gets a push, delayed a little (SYNC_COALESCE_SECONDS, ≤ 5 s) so a burst of edits is one batch.
- 今すぐ同期 and the sweep ask for the same push.

A "pending" key per store (SET NX with a TTL) means "a push is queued and has not started claiming"; while
it exists, more requests add nothing, because the queued push will see their entries. The job deletes the
key right before it claims, so a change committed after that point queues a new push. A per-store Redis
lock makes a second push wait for the first (never two pushes of one store at once); the database lease on
each entry is what keeps correctness even if Redis loses both keys.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app
from redis.exceptions import LockError
from sqlalchemy import bindparam, event, or_, select

from tatenpo import malls
from tatenpo.models import Store, SyncEntry, SyncRun, utcnow
from tatenpo.orders import intake
from tatenpo.platform import tasks
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import DEFERRED_QUEUE, redis
from tatenpo.stock import inventory
from tatenpo.sync import readback

log = logging.getLogger(__name__)

PENDING_KEY = "tatenpo:push-pending:{store_id}"
LOCK_KEY = "tatenpo:push-lock:{store_id}"
READ_BACK_KEY = "tatenpo:read-back-pending:{store_id}"
DRIFT_KEY = "tatenpo:drift-pending:{store_id}"
# Set (for a day) when the daily prune of 在庫同期履歴 is queued.
PRUNE_KEY = "tatenpo:history-pruned"
# Session.info key: the stores to push once the transaction has committed.
PUSH_AFTER_COMMIT = "tatenpo.push_after_commit"


def coalesce_seconds() -> float:
    return float(current_app.config.get("SYNC_COALESCE_SECONDS", 2))


def _redis():
    return redis()


def request_push(store_id: int, trigger: str = "schedule", delay: float = 0.0, mall: str | None = None) -> bool:
    """Queue a push of the store unless one is already queued; True when this call queued it. `mall` (the
    store's) picks the queue; without it, it is read from the database."""
    connection = _redis()
    key = PENDING_KEY.format(store_id=store_id)
    lease = int(current_app.config.get("SYNC_LEASE_SECONDS", 120))
    # The key outlives a lost job by at most this long; a duplicate push after that is harmless (the lock).
    if not connection.set(key, repr(time.time() + delay), nx=True, ex=int(delay) + lease + 60):
        return False
    tasks.enqueue("tatenpo.jobs.push_store", store_id, trigger, queue_name=push_queue(store_id, mall),
                  description=f"push store {store_id} ({trigger})")
    return True


def push_queue(store_id: int, mall: str | None = None) -> str:
    """The queue of a store's pushes: `sync`, or `sync-deferred` for a mall whose results come minutes later
    (its connector waits for them inside the push)."""
    if mall is None:
        store = db.session.get(Store, store_id)  # the sweep has the store loaded already: no query then
        mall = store.mall if store is not None else None
    return DEFERRED_QUEUE if mall is not None and malls.is_deferred(mall) else "sync"


def take_pending(store_id: int) -> None:
    """Called by the push job before it claims: wait out the coalescing delay, then clear the pending key."""
    connection = _redis()
    key = PENDING_KEY.format(store_id=store_id)
    raw = connection.get(key)
    if raw:
        wait = float(raw) - time.time()
        if wait > 0:
            time.sleep(min(wait, 5.0))
    connection.delete(key)


def store_lock(store_id: int):
    """The per-store push lock (auto-expires after the lease if its holder dies)."""
    lease = int(current_app.config.get("SYNC_LEASE_SECONDS", 120))
    return _redis().lock(LOCK_KEY.format(store_id=store_id), timeout=lease, thread_local=False)


def request_once(key_pattern: str, store_id: int, job_path: str, ttl: int = 600) -> bool:
    """Queue a store job (read-back, drift) unless one is already queued for the store."""
    if not _redis().set(key_pattern.format(store_id=store_id), "1", nx=True, ex=ttl):
        return False
    tasks.enqueue(job_path, store_id)
    return True


def clear_once(key_pattern: str, store_id: int) -> None:
    _redis().delete(key_pattern.format(store_id=store_id))


# --- 即時同期: act on inventory.STORES_CHANGED once the stock change is committed -------------------------


# Built once: they run in every stock change's commit.
_IMMEDIATE_STORES = select(Store.id, Store.mall).where(
    Store.id.in_(bindparam("ids", expanding=True)), Store.immediate_sync.is_(True), Store.auto_sync.is_(True)
)
_SYNCED_STORES = select(Store.id, Store.mall).where(
    Store.id.in_(bindparam("ids", expanding=True)), Store.auto_sync.is_(True)
)


def _before_commit(session) -> None:
    changed = session.info.pop(inventory.STORES_CHANGED, None)
    urgent = session.info.pop(inventory.URGENT, False)
    if not changed:
        return
    # Still inside the transaction: the one place where the stores' settings can be read. A sale pushes every
    # store at once, 即時同期 or not.
    statement = _SYNCED_STORES if urgent else _IMMEDIATE_STORES
    immediate = session.execute(statement, {"ids": sorted(changed)}).all()
    if immediate:
        session.info.setdefault(PUSH_AFTER_COMMIT, {}).update(immediate)


def _after_commit(session) -> None:
    stores = session.info.pop(PUSH_AFTER_COMMIT, None)
    if not stores:
        return
    try:
        delay = coalesce_seconds()
        for store_id, mall in sorted(stores.items()):
            request_push(store_id, "immediate", delay=delay, mall=mall)
    except Exception:  # the stock change is committed and scheduled: the sweep pushes it if Redis is away
        log.warning("immediate push not queued; the schedule will push it", exc_info=True)


def _after_rollback(session) -> None:
    session.info.pop(inventory.STORES_CHANGED, None)
    session.info.pop(inventory.URGENT, None)
    session.info.pop(PUSH_AFTER_COMMIT, None)


def init_app(app) -> None:
    """Switch on 即時同期: hook the app's session once per process (the listeners are on db.session's own
    Session class, shared by every app of the process)."""
    if not event.contains(db.session, "before_commit", _before_commit):
        event.listen(db.session, "before_commit", _before_commit)
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_soft_rollback", _after_rollback_soft)


def _after_rollback_soft(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction rolled back: forget its changes
        _after_rollback(session)




# --- the sweep: which stores are due ---------------------------------------------------------------------


def store_interval(store: Store) -> int:
    return store.sync_interval_seconds or int(current_app.config["SYNC_INTERVAL_SECONDS"])


def stores_due_for_push(now=None) -> list[int]:
    """使用中 stores with a due, unleased entry whose last run is at least their interval ago."""
    now = now or utcnow()
    due = []
    for store in db.session.scalars(select(Store).where(Store.auto_sync.is_(True)).order_by(Store.id)):
        has_due = db.session.scalar(
            select(SyncEntry.id)
            .where(SyncEntry.store_id == store.id, SyncEntry.due_at <= now,
                   or_(SyncEntry.lease_until.is_(None), SyncEntry.lease_until < now))
            .limit(1)
        )
        if has_due is None:
            continue
        last = db.session.execute(
            select(SyncRun.started_at, SyncRun.finished_at)
            .where(SyncRun.store_id == store.id, SyncRun.trigger != "readback")
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).first()
        last_at = max((t for t in (last or ()) if t is not None), default=None)
        # A little slack, so a tick that lands a moment early does not wait a whole extra interval.
        if last_at is None or now - last_at >= timedelta(seconds=store_interval(store) - 2):
            due.append(store.id)
    return due


def sweep() -> dict:
    """Queue what is due: pushes (per-store interval), read-backs waiting for a check, hourly drift checks, order
    mails whose reading job was lost, and once a day the prune of old 在庫同期履歴."""
    queued = {"push": [], "read_back": [], "drift": [], "mails": [], "prune": False}
    for store_id in stores_due_for_push():
        if request_push(store_id, "schedule"):
            queued["push"].append(store_id)
    for store in db.session.scalars(select(Store).where(Store.auto_sync.is_(True)).order_by(Store.id)):
        if readback.pending_read_backs(store.id) and request_once(READ_BACK_KEY, store.id, "tatenpo.jobs.read_back"):
            queued["read_back"].append(store.id)
        if readback.drift_due(store) and request_once(DRIFT_KEY, store.id, "tatenpo.jobs.check_drift", ttl=3600):
            queued["drift"].append(store.id)
    for mail_id in intake.unread():
        intake.queue_read(mail_id)
        queued["mails"].append(mail_id)
    if _redis().set(PRUNE_KEY, "1", nx=True, ex=24 * 3600):
        tasks.enqueue("tatenpo.jobs.prune_sync_history")
        queued["prune"] = True
    return queued


def release_lock(lock) -> None:
    try:
        lock.release()
    except LockError:  # it expired while we worked (a push longer than the lease): nothing to give back
        pass


def keepalive(lock):
    """Renew the per-store lock before each batch. Losing it (a stall longer than the lease) is not fatal:
    the database lease, checked per batch, keeps another push from sending the same entries."""

    def renew(seconds: int) -> None:
        try:
            lock.extend(seconds, replace_ttl=True)
        except LockError:
            log.warning("push lock of %s expired during the push", lock.name)

    return renew
