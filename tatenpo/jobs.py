"""RQ entry points. Thin: open the app context, call the domain, commit. An error propagates to RQ
(retry, failed-job registry); nothing here swallows it."""
from __future__ import annotations

import functools
import os

from flask import Flask, has_app_context

_app: Flask | None = None
_app_pid: int | None = None


def application() -> Flask:
    global _app, _app_pid
    if _app is None:
        from tatenpo import create_app

        _app = create_app()
        _app_pid = os.getpid()
    elif _app_pid != os.getpid():
        # A forked work-horse must not reuse the parent's database connections.
        from tatenpo.platform.extensions import db

        with _app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
        _app_pid = os.getpid()
    return _app


def with_app(job):
    """Run the job inside the app context (reusing one when the caller already has it, as tests do)."""

    @functools.wraps(job)
    def wrapped(*args, **kwargs):
        if has_app_context():
            return job(*args, **kwargs)
        with application().app_context():
            return job(*args, **kwargs)

    return wrapped


@with_app
def sweep() -> dict:
    """The scheduler's round: note the tick, then queue the pushes, read-backs and drift checks now due."""
    from tatenpo.platform import health
    from tatenpo.platform.extensions import db

    health.beat(health.SCHEDULE_HEARTBEAT)
    db.session.commit()
    from tatenpo.sync import queueing

    return queueing.sweep()


@with_app
def push_store(store_id: int, trigger: str = "schedule") -> dict:
    """Push one store's due entries (one push per store at a time), then read the quantities back."""
    from tatenpo.sync import push, queueing, readback

    queueing.take_pending(store_id)
    lock = queueing.store_lock(store_id)
    if not lock.acquire(blocking=True, blocking_timeout=30):
        # Another push of this store is still running: come back when it has finished.
        queueing.request_push(store_id, trigger, delay=1)
        return {"store": store_id, "deferred": True}
    try:
        push.close_interrupted(store_id)
        outcome = push.push_store(store_id, trigger, keepalive=queueing.keepalive(lock))
    finally:
        queueing.release_lock(lock)
    run = outcome.run
    summary = {"store": store_id, "run": run.id if run else None, "status": run.status if run else None}
    if run is not None and run.succeeded:
        result = readback.read_back(store_id)
        summary["reflected"] = result.reflected
    return summary


@with_app
def read_back(store_id: int) -> dict:
    """Step 8: read recently pushed quantities back (反映済み / 未反映)."""
    from tatenpo.sync import queueing, readback

    queueing.clear_once(queueing.READ_BACK_KEY, store_id)
    result = readback.read_back(store_id)
    return {"store": store_id, "checked": result.checked, "reflected": result.reflected, "waiting": result.waiting}


@with_app
def check_drift(store_id: int) -> dict:
    """The hourly drift check of one store: flag listings whose stock was changed on the mall."""
    from tatenpo.sync import queueing, readback

    try:
        result = readback.check_drift(store_id)
    finally:
        queueing.clear_once(queueing.DRIFT_KEY, store_id)
    return {"store": store_id, "checked": result.checked, "drifted": len(result.drifted), "error": result.error}


@with_app
def prune_sync_history() -> dict:
    """The daily prune of 在庫同期履歴 older than SYNC_HISTORY_DAYS."""
    from tatenpo.sync import retention

    return retention.prune().as_dict()


@with_app
def run_listing_import(job_id: int) -> None:
    """販売取込 of one uploaded file (ImportJob), all rows in one transaction; failures mark the job failed
    and propagate to RQ."""
    from tatenpo.listings import importer

    importer.run_job(job_id)


@with_app
def run_stock_import(job_id: int) -> None:
    """在庫取込 of one uploaded stock CSV (ImportJob kind 'stock'), all-or-nothing through the inventory rules."""
    from tatenpo.stock import stock_csv

    stock_csv.run_job(job_id)
