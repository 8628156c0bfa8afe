"""The background jobs, each declared with its queue and limits (tatenpo.platform.tasks.job) and enqueued by
its dotted path. Thin: they call the domain and return a summary; errors propagate to RQ."""
from __future__ import annotations

from tatenpo.listings import importer, lifecycle
from tatenpo.orders import reading
from tatenpo.orders.order_csv import importer as order_import
from tatenpo.platform import health
from tatenpo.platform.extensions import db
from tatenpo.platform.tasks import DAY, job
from tatenpo.setup import credential_reminders
from tatenpo.stock import stock_csv
from tatenpo.sync import queueing, readback, retention, runner

# Long enough for a full push of a big catalog at the mall's rate (500,000 楽天 SKUs ≈ 21 min); a stuck call
# is bounded by MALL_TIMEOUT_SECONDS, not by this.
PUSH_TIMEOUT = 6 * 3600
# How long a push waits for another push of the same store before it leaves a note to the running one and
# gives its worker back (queueing.leave_to_holder): other stores' pushes need the worker meanwhile.
LOCK_WAIT_SECONDS = 2


@job("sync", timeout=300, result_ttl=600)
def sweep() -> dict:
    """The scheduler's round: note the tick, then queue the pushes, read-backs and drift checks now due."""
    health.beat(health.SCHEDULE_HEARTBEAT)
    db.session.commit()
    return queueing.sweep()


@job("sync", timeout=PUSH_TIMEOUT)
def push_store(store_id: int, trigger: str = "schedule") -> dict:
    """Push one store's due entries (one push per store at a time), then read the quantities back (a first
    slice; the rest in read_back jobs)."""
    queueing.take_pending(store_id)
    outcome = runner.push_locked(store_id, trigger, wait_seconds=LOCK_WAIT_SECONDS)
    if outcome is None:
        # Another push of this store is running: it queues one more push when it ends.
        queueing.leave_to_holder(store_id, trigger)
        return {"store": store_id, "deferred": True}
    run = outcome.run
    summary = {"store": store_id, "run": run.id if run else None, "status": run.status if run else None}
    if run is not None and run.succeeded:
        result = readback.read_back(store_id, limit=readback.slice_size())
        summary["reflected"] = result.reflected
        if result.resume_after is not None:
            queueing.request_once(queueing.READ_BACK_KEY, store_id, "tatenpo.jobs.read_back", result.resume_after)
    return summary


@job("sync", timeout=600)
def read_back(store_id: int, after: int = 0) -> dict:
    """Step 8: read recently pushed quantities back (反映済み / 未反映), one slice; the next slice is queued
    behind the other stores' work."""
    queueing.clear_once(queueing.READ_BACK_KEY, store_id)
    result = readback.read_back(store_id, limit=readback.slice_size(), after=after)
    if result.resume_after is not None:
        queueing.request_once(queueing.READ_BACK_KEY, store_id, "tatenpo.jobs.read_back", result.resume_after)
    return {"store": store_id, "checked": result.checked, "reflected": result.reflected, "waiting": result.waiting,
            "resume_after": result.resume_after}


@job("sync", timeout=3600)
def check_drift(store_id: int, after: int = 0) -> dict:
    """The hourly drift check of one store, one slice: flag listings whose stock was changed on the mall."""
    result = None
    try:
        result = readback.check_drift(store_id, limit=readback.slice_size(), after=after)
    finally:
        if result is not None and result.resume_after is not None:
            queueing.queue_next_slice(queueing.DRIFT_KEY, store_id, "tatenpo.jobs.check_drift", result.resume_after,
                                      ttl=3600)
        else:
            queueing.clear_once(queueing.DRIFT_KEY, store_id)
    return {"store": store_id, "checked": result.checked, "drifted": len(result.drifted), "error": result.error,
            "resume_after": result.resume_after}


@job("default", timeout=3600, result_ttl=DAY)
def prune_sync_history() -> dict:
    """The daily prune of 在庫同期履歴 older than SYNC_HISTORY_DAYS."""
    return retention.prune().as_dict()


@job("default", timeout=600, result_ttl=DAY)
def remind_expiring_credentials() -> dict:
    """The daily check of the malls' expiring credentials: a mail 14, 7 and 1 day(s) before, each once."""
    return credential_reminders.send_due().as_dict()


@job("imports", timeout=3600, result_ttl=DAY)
def preview_listing_import(job_id: int) -> None:
    """The preview of an uploaded listing file (ImportJob 'previewing'): read it, keep what was read for the
    import, count what would change. The upload request only stores the file."""
    lifecycle.preview(job_id, importer.preview_job)


@job("imports", timeout=3600, result_ttl=DAY)
def preview_stock_import(job_id: int) -> None:
    """The preview of an uploaded stock CSV (ImportJob kind 'stock', 'previewing')."""
    lifecycle.preview(job_id, stock_csv.preview_job)


@job("imports", timeout=3600, result_ttl=DAY)
def run_listing_import(job_id: int) -> None:
    """販売取込 of one uploaded file (ImportJob), all rows in one transaction; failures mark the job failed
    and propagate to RQ."""
    importer.run_job(job_id)


@job("imports", timeout=3600, result_ttl=DAY)
def run_stock_import(job_id: int) -> None:
    """在庫取込 of one uploaded stock CSV (ImportJob kind 'stock'), all-or-nothing through the inventory rules."""
    stock_csv.run_job(job_id)


@job("imports", timeout=3600, result_ttl=DAY)
def preview_order_import(job_id: int) -> None:
    """受注取込's preview of an uploaded order CSV (ImportJob kind 'orders'): what importing it would do."""
    lifecycle.preview(job_id, order_import.preview_work)


@job("imports", timeout=3600, result_ttl=DAY)
def run_order_import(job_id: int) -> None:
    """受注取込 of a previewed order CSV, all orders in one transaction (each through mall_orders.apply)."""
    lifecycle.run(job_id, order_import.import_work)


@job("sync", timeout=300)
def read_order_mail(mail_id: int) -> dict | None:
    """Read one stored order mail into its order (受注 → 引当 → every other store pushed at once)."""
    outcome = reading.read(mail_id)
    return outcome.as_dict() if outcome is not None else None


@job("sync", timeout=600)
def poll_orders(store_id: int) -> dict:
    """Read one store's orders from its mall's order API and apply them (受注API; tatenpo.orders.polling)."""
    from tatenpo.orders import polling

    try:
        result = polling.poll(store_id)
    except polling.PollBusy:
        return {"store": store_id, "busy": True}
    finally:
        queueing.clear_once(queueing.ORDER_POLL_KEY, store_id)
    return {"store": store_id, "seen": result.seen, "changed": len(result.orders), "error": result.error}
