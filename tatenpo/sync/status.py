"""What the screens and the shell show about sync: 在庫同期履歴 rows, the top page's summary, counts.

Plain queries and plain values; nothing here knows about HTTP or Redis.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import case, func, or_, select, tuple_

from tatenpo.malls.base import HINT_APPLICATION, HINT_ITEM, HINT_LOGIN
from tatenpo.models import Listing, Product, Store, SyncAttempt, SyncEntry, SyncRun, utcnow
from tatenpo.platform import health
from tatenpo.platform.extensions import db
from tatenpo.sync.push import CODE_NOT_APPLIED, describe, hint_for_run

RESULTS = ("ok", "ng", "retry")
# The three troubleshooting checks (docs/FLOW.md), in their order and words (shown as they are in every language).
CHECKS = (HINT_LOGIN, HINT_ITEM, HINT_APPLICATION)
CHECK_LABELS = {
    HINT_LOGIN: "ECサイト設定のログインIDやパスワードに間違いが無いか",
    HINT_ITEM: "商品情報が実際のECサイトとタテンポ上で相違が無いか",
    HINT_APPLICATION: "自動在庫同期申請が完了しているか",
}


def troubleshooting(store: Optional[Store], failure_hint: Optional[str]) -> list[dict]:
    """The three troubleshooting checks for a failure, each marked with what Tatenpo could verify by itself:
    'ng' (this is the cause), 'ok' (checked, no problem) or 'unknown' (cannot be checked automatically)."""
    from tatenpo.setup import support_center

    applied = support_center.covers(store.mall) if store else None
    checks = []
    for hint in CHECKS:
        if hint == failure_hint:
            state = "ng"
        elif hint == HINT_APPLICATION:
            state = "ok" if applied else ("ng" if applied is False else "unknown")
        elif hint == HINT_LOGIN:
            # The login works if the mall ever accepted a push, or answered about this very item.
            state = "ok" if (store and store.last_success_at) or failure_hint == HINT_ITEM else "unknown"
        else:  # the item check can only be known from the mall's answer for an item
            state = "unknown"
        checks.append({"hint": hint, "label": CHECK_LABELS[hint], "state": state})
    return checks


@dataclass
class HistoryRow:
    kind: str  # "attempt" (one listing) or "run" (a store-level ✗: gate closed, store unreachable)
    id: int
    at: datetime
    store_id: Optional[int]
    store_name: str
    listing_code: Optional[str]
    product_code: Optional[str]
    quantity: Optional[int]
    ok: bool
    will_retry: bool
    message: Optional[str]
    error_code: Optional[str]
    hint: Optional[str]
    reflected: Optional[bool]
    read_back_quantity: Optional[int]
    trigger: Optional[str] = None
    total: Optional[int] = None

    @property
    def key(self) -> tuple[datetime, bool, int]:
        """The line's place in the history, newest first: (time, an attempt, id) — `history(older_than=…)`."""
        return (self.at, self.kind == "attempt", self.id)

    @property
    def result(self) -> str:
        return "ok" if self.ok else ("retry" if self.will_retry else "ng")

    def as_dict(self) -> dict:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["result"] = self.result
        return data


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """A calendar day in the shop's zone as a naive-UTC range."""
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)
    return start, start + timedelta(days=1)


# The CSV export stops here and says so in its last line; filters by store and day reach the rest.
EXPORT_ROWS = 100_000


def _history_queries(store_id, result, day, older_than):
    """The two sources of the history's lines, filtered: the attempts, and the runs that pushed nothing (None
    when the filter leaves them out)."""
    # Plain columns (no ORM objects): the CSV export reads up to EXPORT_ROWS of them.
    attempts = select(*_ATTEMPT_COLUMNS, SyncRun.trigger).join(SyncRun, SyncRun.id == SyncAttempt.run_id)
    runs = select(SyncRun).where(
        or_(SyncRun.status == "blocked", (SyncRun.status == "failed") & (SyncRun.total == 0))
    )
    if store_id:
        attempts = attempts.where(SyncAttempt.store_id == store_id)
        runs = runs.where(SyncRun.store_id == store_id)
    if day:
        start, end = local_day_bounds(day)
        attempts = attempts.where(SyncAttempt.created_at >= start, SyncAttempt.created_at < end)
        runs = runs.where(SyncRun.started_at >= start, SyncRun.started_at < end)
    if older_than:
        # In the order of the page (time, then an attempt before a run of the same time, then id), newest first.
        at, after_attempt, line_id = older_than
        if after_attempt:
            attempts = attempts.where(tuple_(SyncAttempt.created_at, SyncAttempt.id) < tuple_(at, line_id))
            runs = runs.where(SyncRun.started_at <= at)
        else:
            attempts = attempts.where(SyncAttempt.created_at < at)
            runs = runs.where(tuple_(SyncRun.started_at, SyncRun.id) < tuple_(at, line_id))
    if result == "ok":
        attempts = attempts.where(SyncAttempt.ok.is_(True))
        runs = None
    elif result == "ng":
        attempts = attempts.where(SyncAttempt.ok.is_(False), SyncAttempt.will_retry.is_(False))
    elif result == "retry":
        # A retry is a ✗ too (push._record_results): saying so lets the ✗ lines' index serve it.
        attempts = attempts.where(SyncAttempt.ok.is_(False), SyncAttempt.will_retry.is_(True))
        runs = None
    # Newest first, as the indexes on (created_at, id) read it — all lines, one day's, the ✗ lines alone
    # (ix_sync_attempts_created, ix_sync_attempts_failed_created), or one store's (…_store_created): a page
    # reads its lines, not the months of history behind them.
    attempts = attempts.order_by(SyncAttempt.created_at.desc(), SyncAttempt.id.desc())
    if runs is not None:
        runs = runs.order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
    return attempts, runs


def _run_line(run: SyncRun, names: dict[int, str]) -> HistoryRow:
    return HistoryRow(
        kind="run", id=run.id, at=run.started_at, store_id=run.store_id,
        store_name=names.get(run.store_id, "—"), listing_code=None, product_code=None, quantity=None,
        ok=False, will_retry=False, message=describe(run.message),
        error_code=run.message if run.message == CODE_NOT_APPLIED else None,
        hint=hint_for_run(run), reflected=None, read_back_quantity=None, trigger=run.trigger, total=run.total,
    )


def history(
    *,
    store_id: Optional[int] = None,
    result: Optional[str] = None,
    day: Optional[date] = None,
    older_than: Optional[tuple[datetime, bool, int]] = None,
    limit: int = 100,
    names: Optional[dict[int, str]] = None,
) -> list[HistoryRow]:
    """Newest first: every attempt, plus the store-level ✗ of runs that pushed nothing (one per run).
    `older_than`: only the lines after that one (a HistoryRow.key), for the next page. `names`: the stores'
    names by id, when the caller has read them already."""
    if names is None:
        names = _names()
    attempts, runs = _history_queries(store_id, result, day, older_than)
    rows: list[HistoryRow] = []
    described: dict = {}  # a message is described once per page, however many lines repeat it
    for attempt in db.session.execute(attempts.limit(limit)):
        message = attempt.message
        if message not in described:
            described[message] = describe(message)
        rows.append(HistoryRow(
            "attempt", attempt.id, attempt.created_at, attempt.store_id, names.get(attempt.store_id, "—"),
            attempt.listing_code, attempt.product_code, attempt.quantity, attempt.ok, attempt.will_retry,
            described[message], attempt.error_code, attempt.hint, attempt.reflected, attempt.read_back_quantity,
            attempt.trigger,
        ))
    if runs is not None:
        rows.extend(_run_line(run, names) for run in db.session.scalars(runs.limit(limit)))
    rows.sort(key=lambda r: r.key, reverse=True)
    return rows[:limit]


# The export's columns, in its order (plain tuples: a line's cost is what the CSV writer does with it).
EXPORT_COLUMNS = ("at", "store_name", "listing_code", "product_code", "quantity", "result", "message", "reflected",
                  "read_back_quantity", "total")


def export_lines(
    *,
    store_id: Optional[int] = None,
    result: Optional[str] = None,
    day: Optional[date] = None,
    limit: int = 0,
    names: Optional[dict[int, str]] = None,
) -> Iterator[tuple]:
    """The lines `history` shows, newest first, as tuples of EXPORT_COLUMNS (the message described, the store
    named, `total` only on a run's line; `result` "ok" / "ng" / "retry"), up to `limit` (EXPORT_ROWS when 0)
    and then one more if there are more: read from the database EXPORT_CHUNK lines at a time, never all at
    once."""
    limit = limit or EXPORT_ROWS
    if names is None:
        names = _names()
    attempts, runs = _history_queries(store_id, result, day, None)
    run_lines = [] if runs is None else [
        (r.at, False, r.id, (r.at, r.store_name, None, None, None, "ng", r.message, None, None, r.total))
        for r in (_run_line(run, names) for run in db.session.scalars(runs.limit(limit + 1)))
    ]
    described: dict = {}

    def attempt_lines():
        # A chunk per statement, each starting after the last line of the one before (the page's `older_than`):
        # an index range each, and no cursor held open while a slow download drains.
        query, left = attempts, limit + 1
        while left > 0:
            chunk = db.session.execute(query.limit(min(EXPORT_CHUNK, left))).tuples().all()
            for (line_id, at, store, listing_code, product_code, quantity, ok, will_retry, message, _error_code,
                 _hint, reflected, read_back_quantity, _trigger) in chunk:
                if message not in described:
                    described[message] = describe(message)
                yield (at, True, line_id, (at, names.get(store, "—"), listing_code, product_code, quantity,
                                           "ok" if ok else ("retry" if will_retry else "ng"), described[message],
                                           reflected, read_back_quantity, None))
            if len(chunk) < min(EXPORT_CHUNK, left):
                return
            left -= len(chunk)
            query, _runs = _history_queries(store_id, result, day, (chunk[-1][1], True, chunk[-1][0]))

    merged = heapq.merge(attempt_lines(), run_lines, key=lambda line: line[:3], reverse=True)
    for line in itertools.islice(merged, limit + 1):
        yield line[3]


# Lines read from the database per statement by export_lines.
EXPORT_CHUNK = 2_000


def _names() -> dict[int, str]:
    return dict(db.session.execute(select(Store.id, Store.name)).all())


_ATTEMPT_COLUMNS = (
    SyncAttempt.id, SyncAttempt.created_at, SyncAttempt.store_id, SyncAttempt.listing_code, SyncAttempt.product_code,
    SyncAttempt.quantity, SyncAttempt.ok, SyncAttempt.will_retry, SyncAttempt.message, SyncAttempt.error_code,
    SyncAttempt.hint, SyncAttempt.reflected, SyncAttempt.read_back_quantity,
)


def _store_ids() -> list[int]:
    return list(db.session.scalars(select(Store.id)))


def in_flight() -> bool:
    """Is anything moving right now (a push running or about to, a read-back just started)? The history
    page polls only while this is true. One statement: the page asks on every poll."""
    now = utcnow()
    running = select(SyncRun.id).where(SyncRun.status == "running", SyncRun.started_at > now - timedelta(hours=1))
    leased = select(SyncEntry.id).where(SyncEntry.lease_until > now)
    immediate_due = (
        select(SyncEntry.id)
        .join(Store, Store.id == SyncEntry.store_id)
        .where(SyncEntry.due_at <= now, Store.auto_sync.is_(True), Store.immediate_sync.is_(True), SyncEntry.attempts == 0)
    )
    recent_unread = select(SyncAttempt.id).where(
        SyncAttempt.store_id.is_not(None),  # a store still there (its deletion sets this to NULL)
        SyncAttempt.created_at > now - timedelta(minutes=2),  # ix_sync_attempts_created serves this
        SyncAttempt.ok.is_(True), SyncAttempt.reflected.is_(None),
    )
    return bool(db.session.scalar(select(or_(*(q.exists() for q in (running, leased, immediate_due, recent_unread))))))


def scheduler_state() -> dict:
    last = health.last_beat(health.SCHEDULE_HEARTBEAT)
    stale_after = health.scheduler_stale_after()
    stale = last is None or utcnow() - last > stale_after
    return {
        "last_tick": last,
        "stale": stale,
        "interval_seconds": int(current_app.config["SYNC_INTERVAL_SECONDS"]),
        "stale_after_seconds": int(stale_after.total_seconds()),
    }


def store_states(stores: Optional[list[Store]] = None) -> list[dict]:
    """Each store's health, its open entries and its last run. `stores`: the stores (by id), when the caller
    has read them already."""
    now = utcnow()
    pending, leased = {}, {}
    for store_id, waiting, in_flight_now in db.session.execute(
        select(SyncEntry.store_id, func.count(), func.count(case((SyncEntry.lease_until > now, 1))))
        .group_by(SyncEntry.store_id)
    ):
        pending[store_id], leased[store_id] = waiting, in_flight_now
    states = []
    if stores is None:
        stores = list(db.session.scalars(select(Store).order_by(Store.id)))
    for store in stores:
        last = db.session.scalar(
            select(SyncRun).where(SyncRun.store_id == store.id).order_by(SyncRun.id.desc()).limit(1)
        )
        states.append({
            "id": store.id,
            "name": store.name,
            "mall": store.mall,
            "auto_sync": store.auto_sync,
            "immediate_sync": store.immediate_sync,
            "pending": pending.get(store.id, 0),
            "in_flight": leased.get(store.id, 0),
            "consecutive_failures": store.consecutive_failures,
            "last_success_at": store.last_success_at,
            "last_error_at": store.last_error_at,
            "last_error": store.last_error,
            "last_run": run_data(last) if last else None,
        })
    return states


def run_data(run: SyncRun) -> dict:
    return {
        "id": run.id,
        "store_id": run.store_id,
        "trigger": run.trigger,
        "status": run.status,
        "total": run.total,
        "succeeded": run.succeeded,
        "failed": run.failed,
        "retried": run.retried,
        "message": describe(run.message),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
    }


def counts() -> dict:
    now = utcnow()
    pending, due, in_flight_now = db.session.execute(select(
        func.count(), func.count(case((SyncEntry.due_at <= now, 1))), func.count(case((SyncEntry.lease_until > now, 1)))
    ).select_from(SyncEntry)).one()
    return {"pending": pending, "due": due, "in_flight": in_flight_now}


def failing_stores() -> list[dict]:
    """Stores whose pushes fail now: consecutive failures, or the gate closed with something waiting;
    each with the troubleshooting checks for its latest failure."""
    failing = [s for s in store_states() if s["consecutive_failures"] > 0 or (
        s["last_run"] and s["last_run"]["status"] == "blocked" and s["pending"] > 0)]
    for state in failing:
        store = db.session.get(Store, state["id"])
        if state["last_run"] and state["last_run"]["status"] == "blocked":
            hint = hint_for_run(db.session.get(SyncRun, state["last_run"]["id"]))
        else:
            hint = db.session.scalar(
                select(SyncAttempt.hint).where(SyncAttempt.store_id == store.id, SyncAttempt.ok.is_(False))
                .order_by(SyncAttempt.id.desc()).limit(1)
            )
        state["checks"] = troubleshooting(store, hint)
    return failing


def failing_items(limit: int = 20) -> tuple[int, list[dict]]:
    """Open entries whose last push failed, with the mall's reason."""
    query = (
        select(SyncEntry, Listing, Store.name)
        .join(Listing, Listing.id == SyncEntry.listing_id)
        .join(Store, Store.id == SyncEntry.store_id)
        .where(SyncEntry.attempts > 0, SyncEntry.last_error.is_not(None))
    )
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = [
        {"listing_id": listing.id, "code": listing.code, "store": name, "error": e.last_error,
         "attempts": e.attempts, "due_at": e.due_at, "target": e.target_quantity}
        for e, listing, name in db.session.execute(query.order_by(SyncEntry.updated_at.desc()).limit(limit))
    ]
    return total, rows


def listings_needing_attention(limit: int = 20) -> dict:
    """Listings 未反映 (the mall does not show what was pushed) and listings drifted (changed on the mall)."""
    base = select(Listing, Store.name, Product.code).join(Store, Store.id == Listing.store_id).outerjoin(
        Product, Product.id == Listing.product_id)
    result = {}
    for name, condition in (("unreflected", Listing.reflected.is_(False)), ("drifted", Listing.drifted.is_(True))):
        total = db.session.scalar(select(func.count()).select_from(Listing).where(condition))
        rows = [
            {"id": listing.id, "code": listing.code, "store": store_name, "product_code": product_code,
             "pushed": listing.last_pushed_quantity, "mall": listing.mall_quantity, "error": listing.reflection_error,
             "checking": listing.reflection_deadline is not None, "checked_at": listing.reflection_checked_at}
            for listing, store_name, product_code in db.session.execute(
                base.where(condition).order_by(Listing.updated_at.desc()).limit(limit))
        ]
        result[name] = {"total": total, "rows": rows}
    return result


def hourly_results(hours: int = 24) -> list[dict]:
    """✓ and ✗ attempts per hour over the last `hours` hours (oldest first), hours in the shop's zone."""
    now = utcnow()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    if db.session.get_bind().dialect.name == "postgresql":
        bucket = func.date_trunc("hour", SyncAttempt.created_at)
    else:
        bucket = func.strftime("%Y-%m-%d %H:00:00", SyncAttempt.created_at)
    rows = db.session.execute(
        select(bucket.label("hour"), SyncAttempt.ok, func.count())
        .where(SyncAttempt.store_id.in_(_store_ids()), SyncAttempt.created_at >= start)
        .group_by(bucket, SyncAttempt.ok)
    ).all()
    counts: dict[datetime, dict] = {}
    for hour, ok, count in rows:
        if isinstance(hour, str):
            hour = datetime.strptime(hour, "%Y-%m-%d %H:%M:%S")
        slot = counts.setdefault(hour.replace(tzinfo=None), {"ok": 0, "ng": 0})
        slot["ok" if ok else "ng"] += count
    return [
        {"hour": start + timedelta(hours=i), **counts.get(start + timedelta(hours=i), {"ok": 0, "ng": 0})}
        for i in range(hours)
    ]
