"""What the screens and the shell show about sync: 在庫同期履歴 rows, the top page's summary, counts.

Plain queries and plain values; nothing here knows about HTTP or Redis.
"""
from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple, Optional
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import (Integer, and_, bindparam, case, cast, func, literal, literal_column, null, or_, select, tuple_,
                        union_all)

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


def _history_queries(store_id, result, day, older_than, export: bool = False):
    """The two sources of the history's lines, filtered: the attempts and the runs that pushed nothing (None
    when the filter leaves them out) — the statements of this shape of filters (_history_statements) — and
    the parameters that carry the filters' values."""
    params = {}
    if store_id:
        params["store_id"] = store_id
    if day:
        params["day_start"], params["day_end"] = local_day_bounds(day)
    after = None
    if older_than:
        params["older_at"], after_attempt, params["older_id"] = older_than
        after = "attempt" if after_attempt else "run"
    attempts, runs = _history_statements(bool(store_id), result, bool(day), after, export)
    return attempts, runs, params


# A run that pushed nothing: its line is the store-level ✗ (gate closed, store unreachable). Written with its
# values in the SQL, as the partial index ix_sync_runs_store_level says it (bound values would keep the
# planners, SQLite's and PostgreSQL's alike, from seeing that the index covers the query).
STORE_LEVEL_FAILURE = or_(
    SyncRun.status == literal_column("'blocked'"),
    and_(SyncRun.status == literal_column("'failed'"), SyncRun.total == literal_column("0")),
)
_AT = SyncAttempt.created_at.type  # the bound times are converted as the stored ones are (text on SQLite)


@functools.lru_cache(maxsize=64)
def _history_statements(by_store: bool, result: Optional[str], by_day: bool, after: Optional[str],
                        export: bool = False):
    """The history's two statements for one shape of filters (which filters are set, not their values: those
    are parameters), built once per process as the big tables' are (views.tables.statement_for): building and
    keying them on every request cost as much as running them. `after`: "attempt" or "run", the kind of the
    line a page starts after (`older_than`). `export`: the attempts with the columns the CSV writes
    (_EXPORT_COLUMNS) — no run's trigger, so no join: the index's order is the lines' order, read as it goes."""
    # Plain columns (no ORM objects): the CSV export reads up to EXPORT_ROWS of them.
    if export:
        attempts = select(*_EXPORT_COLUMNS)
    else:
        attempts = select(*_ATTEMPT_COLUMNS, SyncRun.trigger).join(SyncRun, SyncRun.id == SyncAttempt.run_id)
    runs = select(*_RUN_COLUMNS).where(STORE_LEVEL_FAILURE)
    if by_store:
        store_id = bindparam("store_id", type_=Integer())
        attempts = attempts.where(SyncAttempt.store_id == store_id)
        runs = runs.where(SyncRun.store_id == store_id)
    if by_day:
        start, end = bindparam("day_start", type_=_AT), bindparam("day_end", type_=_AT)
        attempts = attempts.where(SyncAttempt.created_at >= start, SyncAttempt.created_at < end)
        runs = runs.where(SyncRun.started_at >= start, SyncRun.started_at < end)
    if after:
        # In the order of the page (time, then an attempt before a run of the same time, then id), newest first.
        at, line_id = bindparam("older_at", type_=_AT), bindparam("older_id", type_=Integer())
        if after == "attempt":
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
    # reads its lines, not the months of history behind them. At most `lines` of each.
    lines = bindparam("lines", type_=Integer())
    attempts = attempts.order_by(SyncAttempt.created_at.desc(), SyncAttempt.id.desc()).limit(lines)
    if runs is not None:
        runs = runs.order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(lines)
    return attempts, runs


def _run_line(run, names: dict[int, str]) -> HistoryRow:
    """A run's store-level ✗ (`run`: a row of _RUN_COLUMNS)."""
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
    attempts, runs, params = _history_queries(store_id, result, day, older_than)
    rows: list[HistoryRow] = []
    described: dict = {}  # a message is described once per page, however many lines repeat it
    for (is_attempt, line_id, at, store, listing_code, product_code, quantity, ok, will_retry, message, error_code,
         hint, reflected, read_back_quantity, trigger, total) in db.session.execute(
            _page_lines(attempts, runs), dict(params, lines=limit)):
        if not is_attempt:
            rows.append(_run_line(_RunLine(line_id, at, store, message, trigger, total), names))
            continue
        if message not in described:
            described[message] = describe(message)
        rows.append(HistoryRow(
            "attempt", line_id, at, store, names.get(store, "—"), listing_code, product_code, quantity, ok,
            will_retry, described[message], error_code, hint, reflected, read_back_quantity, trigger,
        ))
    return rows


class _RunLine(NamedTuple):
    """A run's line as _page_lines reads it: the fields _run_line needs (those of _RUN_COLUMNS)."""

    id: int
    started_at: datetime
    store_id: Optional[int]
    message: Optional[str]
    trigger: Optional[str]
    total: Optional[int]


@functools.lru_cache(maxsize=64)
def _page_lines(attempts, runs):
    """One statement for a page of the history (_history_statements' pair, memoised with it): the newest
    `lines` attempts and the newest `lines` runs' lines, each read down its own index, merged in the page's
    order (HistoryRow.key) and cut to `lines`. One round trip rather than two: on a busy server each one
    waits its turn for the processor."""
    a = attempts.subquery().c
    if runs is None:
        return select(literal(True), *(a[c.name] for c in _ATTEMPT_COLUMNS), a.trigger, null()).order_by(
            a.created_at.desc(), a.id.desc())
    r = runs.subquery().c
    lines = union_all(
        select(literal(True).label("is_attempt"), a.id, a.created_at.label("at"), a.store_id, a.listing_code,
               a.product_code, a.quantity, a.ok, a.will_retry, a.message, a.error_code, a.hint, a.reflected,
               a.read_back_quantity, a.trigger, cast(null(), Integer).label("total")),
        select(literal(False), r.id, r.started_at, r.store_id, null(), null(), null(), literal(False),
               literal(False), r.message, null(), null(), null(), null(), r.trigger, r.total),
    ).subquery()
    return select(lines).order_by(lines.c.at.desc(), lines.c.is_attempt.desc(), lines.c.id.desc()).limit(
        bindparam("lines", type_=Integer()))


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
    attempts, runs, params = _history_queries(store_id, result, day, None, export=True)
    run_lines = [] if runs is None else [
        (r.at, False, r.id, (r.at, r.store_name, None, None, None, "ng", r.message, None, None, r.total))
        for r in (_run_line(run, names) for run in db.session.execute(runs, dict(params, lines=limit + 1)))
    ]
    described: dict = {}

    def attempt_lines():
        # A chunk per statement, each starting after the last line of the one before (the page's `older_than`):
        # an index range each, and no cursor held open while a slow download drains.
        query, query_params, left = attempts, params, limit + 1
        while left > 0:
            # Through the session's connection: plain rows, without the ORM's loading steps per line.
            chunk = db.session.connection().execute(query, dict(query_params, lines=min(EXPORT_CHUNK, left))).all()
            for (line_id, at, store, listing_code, product_code, quantity, ok, will_retry, message, reflected,
                 read_back_quantity) in chunk:
                if message not in described:
                    described[message] = describe(message)
                yield (at, True, line_id, (at, names.get(store, "—"), listing_code, product_code, quantity,
                                           "ok" if ok else ("retry" if will_retry else "ng"), described[message],
                                           reflected, read_back_quantity, None))
            if len(chunk) < min(EXPORT_CHUNK, left):
                return
            left -= len(chunk)
            query, _runs, query_params = _history_queries(store_id, result, day, (chunk[-1][1], True, chunk[-1][0]),
                                                          export=True)

    # Merged with the runs' lines in the page's order — when there are any: most filters and most shops have
    # none, and the merge costs as much a line as writing it.
    merged = heapq.merge(attempt_lines(), run_lines, key=lambda line: line[:3], reverse=True) if run_lines else (
        attempt_lines())
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


_EXPORT_COLUMNS = (
    SyncAttempt.id, SyncAttempt.created_at, SyncAttempt.store_id, SyncAttempt.listing_code, SyncAttempt.product_code,
    SyncAttempt.quantity, SyncAttempt.ok, SyncAttempt.will_retry, SyncAttempt.message, SyncAttempt.reflected,
    SyncAttempt.read_back_quantity,
)
_RUN_COLUMNS = (SyncRun.id, SyncRun.started_at, SyncRun.store_id, SyncRun.message, SyncRun.trigger, SyncRun.total)


def _store_ids() -> list[int]:
    return list(db.session.scalars(select(Store.id)))


def in_flight() -> bool:
    """Is anything moving right now (a push running or about to, a read-back just started)? The history
    page polls only while this is true. One statement: the page asks on every poll."""
    now = utcnow()
    return bool(db.session.scalar(_in_flight_statement(), {
        "now": now, "hour_ago": now - timedelta(hours=1), "minutes_ago": now - timedelta(minutes=2)}))


@functools.lru_cache(maxsize=1)
def _in_flight_statement():
    """in_flight's statement, built once (its times are parameters): four subqueries to build and key on every
    poll cost more than running them."""
    now, hour_ago, minutes_ago = (bindparam(name, type_=_AT) for name in ("now", "hour_ago", "minutes_ago"))
    running = select(SyncRun.id).where(SyncRun.status == "running", SyncRun.started_at > hour_ago)
    leased = select(SyncEntry.id).where(SyncEntry.lease_until > now)
    immediate_due = (
        select(SyncEntry.id)
        .join(Store, Store.id == SyncEntry.store_id)
        .where(SyncEntry.due_at <= now, Store.auto_sync.is_(True), Store.immediate_sync.is_(True), SyncEntry.attempts == 0)
    )
    recent_unread = select(SyncAttempt.id).where(
        SyncAttempt.store_id.is_not(None),  # a store still there (its deletion sets this to NULL)
        SyncAttempt.created_at > minutes_ago,  # ix_sync_attempts_created serves this
        SyncAttempt.ok.is_(True), SyncAttempt.reflected.is_(None),
    )
    return select(or_(*(q.exists() for q in (running, leased, immediate_due, recent_unread))))


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
    return stores_with_states(stores)[1]


def stores_with_states(stores: Optional[list[Store]] = None) -> tuple[dict[int, Store], list[dict]]:
    """The stores by id (every store, in id order, or `stores`, in their order) and their states (store_states),
    read together in one statement: the counts of each store's open entries and its last run ride along with
    the store (the 在庫同期履歴 page draws them on every visit)."""
    params = {"now": utcnow()}
    if stores is not None:
        params["store_ids"] = [store.id for store in stores]
    rows = db.session.execute(_states_statement(stores is not None), params)
    found = {store.id: (store, waiting, in_flight_now, last) for store, waiting, in_flight_now, last in rows}
    order = [store.id for store in stores] if stores is not None else list(found)
    states = []
    for store_id in order:
        if store_id not in found:  # deleted meanwhile
            continue
        store, waiting, in_flight_now, last = found[store_id]
        states.append({
            "id": store.id,
            "name": store.name,
            "mall": store.mall,
            "auto_sync": store.auto_sync,
            "immediate_sync": store.immediate_sync,
            "pending": waiting,
            "in_flight": in_flight_now,
            "consecutive_failures": store.consecutive_failures,
            "last_success_at": store.last_success_at,
            "last_error_at": store.last_error_at,
            "last_error": store.last_error,
            "last_run": run_data(last) if last else None,
        })
    return {store_id: found[store_id][0] for store_id in order if store_id in found}, states


@functools.lru_cache(maxsize=2)
def _states_statement(given: bool):
    """stores_with_states' statement, built once (`given`: for the stores in the parameter `store_ids`)."""
    pending = select(func.count()).where(SyncEntry.store_id == Store.id).correlate(Store).scalar_subquery()
    leased = select(func.count()).where(
        SyncEntry.store_id == Store.id, SyncEntry.lease_until > bindparam("now", type_=_AT)
    ).correlate(Store).scalar_subquery()
    last_run = select(func.max(SyncRun.id)).where(SyncRun.store_id == Store.id).correlate(Store).scalar_subquery()
    query = select(Store, pending, leased, SyncRun).outerjoin(SyncRun, SyncRun.id == last_run).order_by(Store.id)
    if given:
        query = query.where(Store.id.in_(bindparam("store_ids", expanding=True)))
    return query


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
