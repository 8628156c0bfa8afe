"""When a store's push runs, and that only one runs at a time per store.

- 即時同期: after a transaction that changed the schedule commits, each touched store that has immediate
  sync gets a push, delayed a little (SYNC_COALESCE_SECONDS, ≤ 5 s) so a burst of edits is one batch.
- 今すぐ同期 and the sweep ask for the same push.

A "pending" key per store (SET NX with a TTL) means "a push is queued and has not started claiming"; while
it exists, more requests add nothing, because the queued push will see their entries. The job deletes the
key right before it claims, so a change committed after that point queues a new push. A per-store Redis
lock keeps one push per store at a time: a second push waits a moment, then leaves a note for the first and
frees its worker; the first queues one more push when it lets go of the lock. The lock lives a few seconds
past its holder's last heartbeat, so the sweep knows a push whose worker died and takes its entries back at
once. The database lease on each entry is what keeps correctness even if Redis loses every key.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from flask import current_app, g, has_request_context
from redis.exceptions import LockError, RedisError
from sqlalchemy import bindparam, event, or_, select

from tatenpo import malls
from tatenpo.models import Store, SyncEntry, SyncRun, utcnow
from tatenpo.orders import intake, polling
from tatenpo.platform import tasks
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import DEFERRED_QUEUE, redis
from tatenpo.stock import inventory
from tatenpo.sync import push, readback

log = logging.getLogger(__name__)

PENDING_KEY = "tatenpo:push-pending:{store_id}"
LOCK_KEY = "tatenpo:push-lock:{store_id}"
READ_BACK_KEY = "tatenpo:read-back-pending:{store_id}"
DRIFT_KEY = "tatenpo:drift-pending:{store_id}"
# A store's order poll is queued or running (the job clears it when it ends; the TTL, when a job is lost).
ORDER_POLL_KEY = "tatenpo:order-poll-pending:{store_id}"
# A note from a push that found the store's lock taken: the holder queues one more push when it lets go.
AGAIN_KEY = "tatenpo:push-again:{store_id}"
# The note outlives the longest push (jobs.PUSH_TIMEOUT); one left by a dead holder costs one extra push.
AGAIN_TTL = 6 * 3600
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
    lease = push.lease_seconds()
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


def lock_seconds() -> int:
    return int(current_app.config.get("SYNC_LOCK_SECONDS", 15))


def store_lock(store_id: int):
    """The per-store push lock. It expires SYNC_LOCK_SECONDS after its holder's last heartbeat (keepalive), so
    a push whose worker died is known within seconds, however long a live push's call to the mall takes."""
    lock = _redis().lock(LOCK_KEY.format(store_id=store_id), timeout=lock_seconds(), thread_local=False)
    lock.store_id = store_id
    return lock


def leave_to_holder(store_id: int, trigger: str) -> None:
    """A push found the store's lock taken: instead of waiting (and holding a worker), leave a note that the
    holder reads when it lets go of the lock (release_lock) and queues one more push for."""
    connection = _redis()
    note = AGAIN_KEY.format(store_id=store_id)
    connection.set(note, trigger, ex=AGAIN_TTL)
    if connection.exists(LOCK_KEY.format(store_id=store_id)):
        return  # the holder lets go after this moment, so it reads the note afterwards
    if _take(connection, note) is not None:  # the holder let go before the note was there: queue it here
        request_push(store_id, trigger)


def _take(connection, key: str):
    """Read and delete a key in one step (MULTI), so only one of two readers gets its value."""
    pipe = connection.pipeline()
    pipe.get(key)
    pipe.delete(key)
    value, _deleted = pipe.execute()
    return value.decode() if value is not None else None


def _push_again_if_asked(store_id: int) -> None:
    try:
        trigger = _take(_redis(), AGAIN_KEY.format(store_id=store_id))
        if trigger is not None:
            request_push(store_id, trigger)
    except RedisError:  # the entries stay due: the sweep pushes them
        log.warning("the push asked for during the push of store %s was not queued", store_id, exc_info=True)


def request_once(key_pattern: str, store_id: int, job_path: str, *args, ttl: int = 600) -> bool:
    """Queue a store job (read-back, drift) unless one is already queued for the store; `args` follow the
    store's id (where a sliced job resumes)."""
    if not _redis().set(key_pattern.format(store_id=store_id), "1", nx=True, ex=ttl):
        return False
    tasks.enqueue(job_path, store_id, *args)
    return True


def queue_next_slice(key_pattern: str, store_id: int, job_path: str, *args, ttl: int = 600) -> None:
    """A sliced store job queues its next slice: the store's key (request_once) stays set meanwhile, so the
    sweep does not start the same work over beside it."""
    _redis().set(key_pattern.format(store_id=store_id), "1", ex=ttl)
    tasks.enqueue(job_path, store_id, *args)


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
        if has_request_context():
            g.push_deferred = True  # platform/web tells the user the push comes once Redis is back


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
    """使用中 stores with a due, unleased entry whose last run is at least their interval ago — or was cut
    short by a dead worker: then its entries are taken back and pushed at once."""
    now = now or utcnow()
    due = []
    for store in db.session.scalars(select(Store).where(Store.auto_sync.is_(True)).order_by(Store.id)):
        last = db.session.execute(
            select(SyncRun.status, SyncRun.message, SyncRun.started_at, SyncRun.finished_at)
            .where(SyncRun.store_id == store.id, SyncRun.trigger != "readback")
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).first()
        if last is not None and last.status == "running" and not reclaim_dead_push(store.id):
            continue  # a push of the store is alive: it takes what is due
        has_due = db.session.scalar(
            select(SyncEntry.id)
            .where(SyncEntry.store_id == store.id, SyncEntry.due_at <= now,
                   or_(SyncEntry.lease_until.is_(None), SyncEntry.lease_until < now))
            .limit(1)
        )
        if has_due is None:
            continue
        interrupted = last is not None and (last.status == "running" or last.message == push.CODE_INTERRUPTED)
        last_at = None if last is None else max(t for t in (last.started_at, last.finished_at) if t is not None)
        # A little slack, so a tick that lands a moment early does not wait a whole extra interval.
        if interrupted or last_at is None or now - last_at >= timedelta(seconds=store_interval(store) - 2):
            due.append(store.id)
    return due


def reclaim_dead_push(store_id: int) -> bool:
    """The store's last run still says "running": if nobody holds the store's lock, its worker died — close
    the run as interrupted and take its entries back (push.close_interrupted). False while a push is alive."""
    lock = store_lock(store_id)
    if not lock.acquire(blocking=False):
        return False
    try:
        push.close_interrupted(store_id)
    finally:
        release_lock(lock)
    return True


def sweep() -> dict:
    """Queue what is due: pushes (per-store interval), read-backs waiting for a check, hourly drift checks, order
    mails whose reading job was lost, order polls (受注API, per-store interval), and once a day the prune of old
    在庫同期履歴."""
    queued = {"push": [], "read_back": [], "drift": [], "mails": [], "orders": [], "prune": False}
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
    for store_id in polling.due():
        if request_once(ORDER_POLL_KEY, store_id, "tatenpo.jobs.poll_orders", ttl=polling.LOCK_SECONDS):
            queued["orders"].append(store_id)
    if _redis().set(PRUNE_KEY, "1", nx=True, ex=24 * 3600):
        tasks.enqueue("tatenpo.jobs.prune_sync_history")
        queued["prune"] = True
    return queued


def release_lock(lock) -> None:
    """Let go of a store's lock (stopping its heartbeat), then queue the push another one asked for meanwhile."""
    heartbeat = getattr(lock, "heartbeat", None)
    if heartbeat is not None:
        heartbeat.stop()
    try:
        lock.release()
    except LockError:  # it expired while we worked (a stall past its heartbeat): nothing to give back
        pass
    store_id = getattr(lock, "store_id", None)
    if store_id is not None:
        _push_again_if_asked(store_id)


class _Heartbeat:
    """Renews a held lock every third of its lifetime from a thread of its own, so a call to the mall that
    hangs (or a 楽天 FTP push waiting minutes for its log) keeps the lock, and a killed worker loses it soon."""

    def __init__(self, lock, seconds: int) -> None:
        self.lock, self.seconds = lock, seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat {lock.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.seconds / 3):
            try:
                self.lock.extend(self.seconds, replace_ttl=True)
            except LockError:
                log.warning("push lock of %s expired during the push", self.lock.name)
                return
            except RedisError:  # Redis away for a moment: the next beat tries again
                log.warning("push lock of %s not renewed", self.lock.name, exc_info=True)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def keepalive(lock):
    """Keep the per-store lock while the push runs (a heartbeat thread, stopped by release_lock), and renew
    it before each batch too. Losing it (a stall past its lifetime) is not fatal: the database lease, checked
    per batch, keeps another push from sending the same entries."""
    seconds = lock_seconds()
    lock.heartbeat = _Heartbeat(lock, seconds)

    def renew(_lease_seconds: int) -> None:
        try:
            lock.extend(seconds, replace_ttl=True)
        except LockError:
            log.warning("push lock of %s expired during the push", lock.name)

    return renew
