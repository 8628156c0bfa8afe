"""One push of one store: claim its due schedule entries with a lease, send them through the store's mall
connector in the mall's batches, and write down what happened.

Guarantees (docs/FLOW.md, "Sync guarantees"):
- An entry closes only if its version is still the one pushed (DELETE … WHERE id AND version), so a stock
  change that arrives during a push stays due with its newer target.
- Every batch first renews the lease of its entries; an entry whose lease was lost (this process stalled
  longer than the lease, and another push claimed it) is not sent, so no stale value can overwrite a newer
  one at the mall. Targets are re-read at that moment, so a batch always carries the newest value.
- Transient failures keep the entry due with backoff; permanent ones park it (✗ with the reason and the
  troubleshooting hint) until a newer change, 今すぐ同期 or the long backoff brings it back.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, and_, any_, bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY

from tatenpo.malls.base import HINT_APPLICATION, HINT_LOGIN, ItemRef, ItemResult, MallError, PushItem
from tatenpo.models import Listing, Product, Store, SyncAttempt, SyncEntry, SyncRun, utcnow
from tatenpo.platform.credentials import CredentialKeyError
from tatenpo.platform.extensions import db
from tatenpo.setup import credential_dates, stores, support_center
from tatenpo.sync import decreases

log = logging.getLogger(__name__)

# Our own reasons, stored as error codes so every page can show them in the reader's language.
CODE_NOT_APPLIED = "tatenpo:not-applied"
CODE_SYNC_OFF = "tatenpo:sync-off"
CODE_NO_CONNECTOR = "tatenpo:no-connector"
CODE_INTERRUPTED = "tatenpo:interrupted"

MESSAGES = {
    # The third troubleshooting check's own words (docs/FLOW.md).
    CODE_NOT_APPLIED: _l("The application for automatic stock sync is not completed."),
    CODE_SYNC_OFF: _l("Automatic stock sync of this EC site is off (停止中)."),
    CODE_NO_CONNECTOR: _l("This EC site cannot be reached: %(detail)s"),
    CODE_INTERRUPTED: _l("This push was interrupted (its worker stopped); what it had not finished was pushed again."),
}

# How many entries one claim takes; a bigger backlog is worked through claim after claim in the same run.
CLAIM_SIZE = 2000
# Beyond the backlog found at the start, a run re-claims what became due meanwhile at most this many times,
# so edits arriving non-stop cannot keep one job forever (what is left stays due for the next push).
EXTRA_ROUNDS = 5
RETRY_FIRST_SECONDS = 30
RETRY_MAX_SECONDS = 30 * 60
PARK_SECONDS = 60 * 60  # a permanent failure is tried again after an hour (or at once with 今すぐ同期)


@dataclass
class PushOutcome:
    run: Optional[SyncRun]
    blocked: Optional[str] = None  # the gate's reason code when nothing could be pushed


def lease_seconds() -> int:
    return int(current_app.config.get("SYNC_LEASE_SECONDS", 60))


def retry_delay(attempts: int, retry_after: Optional[float] = None) -> timedelta:
    """Backoff after a transient failure: 30 s, 60 s, 2 min … capped at 30 min; the mall's Retry-After wins
    when it asks for longer."""
    seconds = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** max(0, attempts - 1))
    if retry_after:
        seconds = max(seconds, min(float(retry_after), RETRY_MAX_SECONDS))
    return timedelta(seconds=seconds)


def gate(store: Store) -> Optional[str]:
    """Why this store may not be pushed now (a reason code), or None when it may."""
    if not store.auto_sync:
        return CODE_SYNC_OFF
    if not support_center.covers(store.mall):
        return CODE_NOT_APPLIED
    return None


def message_for(code: str, **values) -> str:
    return str(MESSAGES[code]) % values if values else str(MESSAGES[code])


def open_connector(store: Store):
    """The store's mall connector (the factory lives with the connectors; they never see the database)."""
    from tatenpo.malls import connector_for
    from tatenpo.platform import credentials
    from tatenpo.platform.redis_conn import redis

    config = current_app.config
    return connector_for(store.mall, store.endpoint, credentials.read(store), redis(),
                         config["MALL_TIMEOUT_SECONDS"], **stores.connector_options(store, config))


def connector_lease_seconds(connector) -> int:
    """A deferred connector (Rakuten FTP) waits for the mall's result log inside one call: the lease must
    outlast that wait, or another push could take the entries while the log is still coming."""
    if getattr(connector, "deferred", False):
        return max(lease_seconds(), int(current_app.config.get("SYNC_DEFERRED_LEASE_SECONDS", 900)))
    return lease_seconds()


def _worker_token(run_id: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}:{uuid.uuid4().hex[:8]}"


def push_store(
    store_id: int,
    trigger: str = "schedule",
    *,
    keepalive: Optional[Callable[[int], None]] = None,
    connector=None,
) -> PushOutcome:
    """Push the store's due entries (all open ones for 今すぐ同期 / the shell). Commits as it goes.

    `keepalive(seconds)` is called before each batch (the job renews its per-store lock with it).
    """
    store = db.session.get(Store, store_id)
    if store is None:
        return PushOutcome(run=None)
    every_open = trigger in ("manual", "cli")
    reason = gate(store)
    if reason is not None:
        return PushOutcome(run=_record_blocked(store, trigger, reason), blocked=reason)

    opened = None
    call_error: Optional[MallError] = None
    if connector is None:
        try:
            connector = opened = open_connector(store)
        except MallError as exc:
            call_error = exc
        # No, incomplete or undecryptable (the key was replaced) credentials, or no endpoint: say so on the run.
        except (KeyError, ValueError, CredentialKeyError) as exc:
            call_error = MallError(message_for(CODE_NO_CONNECTOR, detail=str(exc)), transient=False,
                                   hint=HINT_LOGIN, code=CODE_NO_CONNECTOR)
    try:
        return _push(store, trigger, every_open, keepalive, connector, call_error)
    finally:
        if opened is not None:
            opened.close()


def _push(store: Store, trigger: str, every_open: bool, keepalive, connector, call_error) -> PushOutcome:
    run: Optional[SyncRun] = None
    if every_open:
        run = _start_run(store, trigger)
    started = time.monotonic()
    counts = {"total": 0, "succeeded": 0, "failed": 0, "retried": 0}

    backlog = db.session.scalar(select(db.func.count()).select_from(SyncEntry).where(SyncEntry.store_id == store.id))
    max_rounds = -(-backlog // CLAIM_SIZE) + EXTRA_ROUNDS
    rounds = 0
    while call_error is None and rounds < max_rounds:
        rounds += 1
        if run is None:
            if not _has_claimable(store.id, every_open):
                break
            run = _start_run(store, trigger)
        token = _worker_token(run.id)
        lease = connector_lease_seconds(connector)
        claimed = claim(store.id, token, CLAIM_SIZE, every_open=every_open, lease=lease)
        if not claimed:
            break
        renewed_at = time.monotonic()
        for start in range(0, len(claimed), connector.max_batch):
            batch_ids = claimed[start : start + connector.max_batch]
            if keepalive is not None:
                keepalive(lease)
            if time.monotonic() - renewed_at >= lease / 3:
                # The batches still to come keep their claim too, however many a slow mall takes per lease.
                renew_lease(claimed[start + connector.max_batch :], token, lease)
                renewed_at = time.monotonic()
            items = _renew_and_load(batch_ids, token, lease)
            if not items:
                continue
            try:
                items = _hold_unexplained_decreases(store, connector, items, token)
                if not items:
                    continue
                results = connector.push([item for item, _entry in items])
            except MallError as exc:
                exc = credential_dates.explain(store, exc)  # an expired key: say so, and how to renew it
                call_error = exc
                _record_call_failure(run, store, items, token, exc, counts)
                release(claimed[start + connector.max_batch :], token, exc)
                break
            _record_results(run, store, items, results, token, counts,
                            verified=not getattr(connector, "can_read", True))
        release_leftovers(token)
        if every_open and call_error is None:
            every_open = False  # later rounds take only what became due meanwhile
            if not _has_claimable(store.id, False):
                break

    if run is None and call_error is not None:
        # No connector at all: one run says why, even when the schedule trigger found the store due.
        if not _has_claimable(store.id, True):
            return PushOutcome(run=None)
        run = _start_run(store, trigger)
    if run is None:
        return PushOutcome(run=None)
    _finish_run(run, store, counts, call_error, started)
    return PushOutcome(run=run)


def close_interrupted(store_id: int) -> int:
    """Mark the store's runs still "running" as interrupted, and take back the entries they had claimed (due
    again at once, not when their lease runs out). Only for a caller holding the store's push lock: then no
    other push of the store is alive, so such a run, and any claim on the store's entries, belongs to a
    worker that died."""
    now = utcnow()
    result = db.session.execute(
        update(SyncRun)
        .where(SyncRun.store_id == store_id, SyncRun.status == "running")
        .values(status="failed", message=CODE_INTERRUPTED, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount:
        claimed = list(db.session.scalars(
            select(SyncEntry.id).where(SyncEntry.store_id == store_id, SyncEntry.leased_by.is_not(None))))
        locked, held = lockable(SyncEntry, claimed)
        free = update(SyncEntry).values(lease_until=None, leased_by=None).execution_options(synchronize_session=False)
        for start in range(0, len(locked), 1000):
            db.session.execute(free.where(SyncEntry.id.in_(locked[start : start + 1000])))
        db.session.commit()
        _one_by_one((free.where(SyncEntry.id == entry_id), None) for entry_id in held)
    return result.rowcount


def renew_lease(ids: list[int], token: str, lease: int) -> None:
    """Extend this push's claim on entries it still holds (never one another push took meanwhile)."""
    now = utcnow()
    free, _held = lockable(SyncEntry, ids)  # an edit holding a row: its batch renews it, or lets it go
    for start in range(0, len(free), 1000):
        db.session.execute(
            update(SyncEntry)
            .where(_among(SyncEntry.id, free[start : start + 1000]), SyncEntry.leased_by == token,
                   SyncEntry.lease_until > now)
            .values(lease_until=now + timedelta(seconds=lease))
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def _has_claimable(store_id: int, every_open: bool) -> bool:
    now = utcnow()
    query = select(SyncEntry.id).where(
        SyncEntry.store_id == store_id, or_(SyncEntry.lease_until.is_(None), SyncEntry.lease_until < now)
    )
    if not every_open:
        query = query.where(SyncEntry.due_at <= now)
    return db.session.scalar(query.limit(1)) is not None


def claim(store_id: int, token: str, limit: int, *, every_open: bool = False, lease: Optional[int] = None) -> list[int]:
    """Lease up to `limit` of the store's due entries to `token`; returns their ids (oldest due first).

    PostgreSQL: the inner SELECT … FOR UPDATE SKIP LOCKED lets concurrent pushes take disjoint sets
    without waiting. SQLite: the single UPDATE runs under the database's write lock, so two claimers are
    serialised and the second sees the first one's lease. Committed at once, so the lease is visible.
    """
    now = utcnow()
    candidates = (
        select(SyncEntry.id)
        .where(
            SyncEntry.store_id == store_id,
            or_(SyncEntry.lease_until.is_(None), SyncEntry.lease_until < now),
        )
        .order_by(SyncEntry.due_at, SyncEntry.id)
        .limit(limit)
    )
    if not every_open:
        candidates = candidates.where(SyncEntry.due_at <= now)
    if db.session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(SyncEntry)
        .where(SyncEntry.id.in_(candidates.scalar_subquery()))
        .where(or_(SyncEntry.lease_until.is_(None), SyncEntry.lease_until < now))
        .values(lease_until=now + timedelta(seconds=lease or lease_seconds()), leased_by=token)
        .returning(SyncEntry.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(db.session.scalars(statement))
    db.session.commit()
    return sorted(ids)


def lockable(model, ids) -> tuple[list[int], list[int]]:
    """Split ids into rows locked now and rows another transaction holds (PostgreSQL, SKIP LOCKED).

    A push never waits for a row lock while it holds others: a stock edit or an import holds entries and
    listings in its own order for a whole transaction, and waiting on it with locks in hand can deadlock —
    PostgreSQL would then abort one side, possibly the shop's edit. The rows held elsewhere are done one by
    one afterwards (see _one_by_one), when this transaction holds nothing. SQLite has no row locks: one
    writer at a time, so everything is lockable.
    """
    ids = sorted(set(ids))
    if not ids or db.session.get_bind().dialect.name != "postgresql":
        return ids, []
    locked: set[int] = set()
    for start in range(0, len(ids), 1000):
        locked.update(db.session.scalars(
            select(model.id).where(_among(model.id, ids[start : start + 1000])).order_by(model.id)
            .with_for_update(skip_locked=True)
        ))
    return sorted(locked), [i for i in ids if i not in locked]


def _among(column, ids):
    """`column IN ids`. PostgreSQL: `column = ANY(:ids)`, the ids as one array parameter. A batch's 400 ids as
    400 parameters cost more to render, convert and parse on every statement (SQLAlchemy's expanding IN,
    psycopg's placeholder conversion, which it caches only for short queries) than the statement's own work:
    they were most of the engine's DB time per batch (bench/engine_overhead.py --statements)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(ids)


def _int_arrays(name: str, **columns: list[int]):
    """PostgreSQL: lists of whole numbers as a table `name(column, …)` to join, each list one array parameter
    (unnest): a batch's values in one statement, without a parameter per value (see _among)."""
    arrays = (bindparam(f"{name}_{column}", values, type_=ARRAY(Integer)) for column, values in columns.items())
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


def _one_by_one(statements) -> None:
    """Run single-row statements each in its own transaction: waiting for one row while holding none."""
    for statement, params in statements:
        db.session.execute(statement, params) if params is not None else db.session.execute(statement)
        db.session.commit()


# What a batch reads of each entry and its listing (SyncEntry.id as entry_id: Listing.id is the listing's).
_LOAD_COLUMNS = (
    SyncEntry.id.label("entry_id"), SyncEntry.version, SyncEntry.attempts, SyncEntry.target_quantity,
    SyncEntry.held_since, Listing.id, Listing.item_code, Listing.variant_code, Listing.attributes, Listing.code,
    Listing.product_id, Listing.mall_expected, Listing.last_pushed_at, Listing.reflected,
    Product.code.label("product_code"),
)


def _renew_and_load(ids: list[int], token: str, lease: int) -> list[tuple[PushItem, "_EntrySnapshot"]]:
    """Renew the lease of the batch and read each entry's newest target. Entries no longer ours are left
    out: another push owns them now and will send a value at least as new."""
    now = utcnow()
    # Entries an edit is changing right now are not sent in this batch; the run releases them at its end
    # and they are due again (with the edit's newer target).
    free, _held = lockable(SyncEntry, ids)
    renewed = db.session.scalars(
        update(SyncEntry)
        .where(_among(SyncEntry.id, free), SyncEntry.leased_by == token, SyncEntry.lease_until > now)
        .values(lease_until=now + timedelta(seconds=lease))
        .returning(SyncEntry.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not renewed:
        db.session.commit()
        return []
    # Plain columns, not ORM objects: the engine's own work per item is what it adds to the mall's pace
    # (bench/engine_overhead.py), and building two objects per item was a third of it.
    rows = db.session.execute(
        select(*_LOAD_COLUMNS)
        .join(Listing, Listing.id == SyncEntry.listing_id)
        .outerjoin(Product, Product.id == Listing.product_id)
        .where(_among(SyncEntry.id, renewed))
        .order_by(SyncEntry.id)
    ).all()
    items = []
    for row in rows:
        item = PushItem(
            key=row.id,
            item_code=row.item_code,
            variant_code=row.variant_code or "",
            attributes=dict(row.attributes or {}),
            quantity=row.target_quantity,
            # Absolute pushes, as everywhere: Shopify's changeFromQuantity check is opted out of (None).
            expected=None,
        )
        awaiting_reflection = row.last_pushed_at is not None and row.reflected is None
        items.append((item, _EntrySnapshot(row.entry_id, row.version, row.attempts, row.id, row.code,
                                           row.product_id, row.target_quantity, row.mall_expected,
                                           row.mall_expected is not None and not awaiting_reflection,
                                           row.held_since, row.product_code)))
    # Commit before the network call: no row stays locked while the mall answers. (Plain values were taken
    # above: the commit expires the rows, and touching them again would cost a query each.)
    db.session.commit()
    return items


def _hold_unexplained_decreases(store: Store, connector, items, token: str) -> list:
    """No push erases a sale: read what the mall shows first, and leave out the listings whose mall count
    fell below what Tatenpo expects with no order to explain it (a sale whose order has not arrived yet).

    Such a listing is held — not overwritten — for ORDER_WAIT_SECONDS, rechecked meanwhile, for its order to
    arrive (booking the order lowers the expectation, and the push goes on). After the wait it is flagged with
    the difference for the shop to adopt as a sale or overwrite; a store set to 説明のない減少は販売として扱う
    adopts it at once. Connectors that cannot read (楽天 FTP) cannot be checked."""
    if not getattr(connector, "can_read", True):
        return items
    checked = [(item, snapshot) for item, snapshot in items if snapshot.checkable]
    if not checked:
        return items
    shown = {result.key: result.quantity for result in connector.read(
        [ItemRef(item.key, item.item_code, item.variant_code, item.attributes) for item, _snapshot in checked])}
    now = utcnow()
    wait = timedelta(seconds=int(current_app.config["ORDER_WAIT_SECONDS"]))
    keep, held, flagged, adopted = [], [], [], []
    for item, snapshot in items:
        quantity = shown.get(snapshot.listing_id) if snapshot.checkable else None
        if quantity is None or quantity >= snapshot.expected:
            keep.append((item, snapshot))
        elif store.adopt_unexplained_decrease:
            adopted.append((snapshot, quantity))
        elif snapshot.held_since is None or now - snapshot.held_since < wait:
            held.append(snapshot)
        else:
            flagged.append((snapshot, quantity))
    if held or flagged or adopted:
        _set_aside(held, flagged, adopted, token, now, wait)
    return keep


UNEXPLAINED_MESSAGE = _l("The mall shows %(shown)s where %(expected)s was expected and no order explains the "
                         "difference: waiting for the order before pushing.")
CODE_UNEXPLAINED = "tatenpo:unexplained-decrease"
RECHECK_SECONDS = 20


def _set_aside(held, flagged, adopted, token: str, now, wait: timedelta) -> None:
    """Give the held entries back to be checked again soon; flag what waited long enough; book adopted
    decreases as sales (which makes their entries due again with the new target)."""
    entries = SyncEntry.__table__
    for snapshot in held:
        db.session.execute(
            update(entries).where(entries.c.id == snapshot.id, entries.c.leased_by == token)
            .values(lease_until=None, leased_by=None, held_since=snapshot.held_since or now,
                    due_at=now + timedelta(seconds=min(RECHECK_SECONDS, wait.total_seconds())),
                    last_error=str(_l("Waiting for the order of a sale seen on the mall.")))
        )
    for snapshot, quantity in flagged:
        message = str(UNEXPLAINED_MESSAGE % {"shown": quantity, "expected": snapshot.expected})
        # Parked until the shop chooses; nothing is pushed over the mall's count meanwhile.
        db.session.execute(
            update(entries).where(entries.c.id == snapshot.id, entries.c.leased_by == token)
            .values(lease_until=None, leased_by=None, due_at=now + timedelta(seconds=PARK_SECONDS), last_error=message)
        )
        db.session.execute(update(Listing).where(Listing.id == snapshot.listing_id)
                           .values(unexplained_decrease=snapshot.expected - quantity))
    db.session.commit()
    for snapshot, quantity in adopted:
        decreases.adopt(snapshot.listing_id, shown=quantity)
        _release_ids([snapshot.id], token)
        db.session.commit()


@dataclass(frozen=True)
class _EntrySnapshot:
    """What was sent for one entry (plain values: the ORM rows are expired by the commits around the call)."""

    id: int
    version: int
    attempts: int
    listing_id: int
    listing_code: str
    product_id: Optional[int]
    quantity: int
    # What the mall should show by Tatenpo's knowledge (None: nothing Tatenpo pushed yet to compare with), and
    # whether that can be checked now (not while the mall may still be showing the value before the last push).
    expected: Optional[int] = None
    checkable: bool = False
    held_since: Optional[datetime] = None
    product_code: Optional[str] = None  # read with the batch (_LOAD_COLUMNS)


def _product_codes(snapshots) -> dict[int, str]:
    # Read with the batch rather than asked for again after the mall's answer: one statement less per call.
    return {s.product_id: s.product_code for s in snapshots if s.product_id is not None}


def _record_results(run: SyncRun, store: Store, items, results: list[ItemResult], token: str, counts: dict,
                    *, verified: bool = False) -> None:
    """`verified`: the results already say what the mall applied (Rakuten FTP's result log), so a ✓ is
    反映済み at once and there is nothing to read back."""
    now = utcnow()
    by_key = {r.key: r for r in results}
    snapshots = [snapshot for _item, snapshot in items]
    codes = _product_codes(snapshots)
    attempts, closed_ok, retry, park = [], [], [], []
    for snapshot in snapshots:
        result = by_key.get(snapshot.listing_id)
        if result is None:  # a connector that forgot an item: treat it as a transient failure, never as ✓
            result = ItemResult(key=snapshot.listing_id, ok=False, transient=True,
                                message=str(_l("The mall did not answer for this item.")))
        will_retry = (not result.ok) and result.transient
        row = _attempt_row(run, store, snapshot, codes, ok=result.ok, will_retry=will_retry,
                           message=result.message, error_code=result.error_code,
                           hint=None if result.ok else result.hint, now=now)
        if verified and result.ok:
            row.update(reflected=True, read_back_quantity=snapshot.quantity, read_back_at=now)
        attempts.append(row)
        if result.ok:
            closed_ok.append(snapshot)
        elif will_retry:
            retry.append((snapshot, result.message, None))
        else:
            park.append((snapshot, result.message))
    held = insert_attempts(attempts) if attempts else []
    db.session.commit()
    mark_held(held)
    _close(closed_ok, token, now, verified=verified)
    _reschedule(retry, token, now, transient=True)
    _reschedule([(s, m, None) for s, m in park], token, now, transient=False)
    counts["total"] += len(snapshots)
    counts["succeeded"] += len(closed_ok)
    counts["failed"] += len(retry) + len(park)
    counts["retried"] += len(retry)
    _save_counts(run, counts)
    db.session.commit()


def _record_call_failure(run: SyncRun, store: Store, items, token: str, error: MallError, counts: dict) -> None:
    """The whole call failed: each entry of the batch gets its ✗ (or retry) line; the rest of the run is
    released without lines, so a long outage does not write a line per item per run."""
    now = utcnow()
    snapshots = [snapshot for _item, snapshot in items]
    codes = _product_codes(snapshots)
    rows = [
        _attempt_row(run, store, s, codes, ok=False, will_retry=error.transient, message=error.message,
                     error_code=error.code, hint=error.hint, now=now)
        for s in snapshots
    ]
    held = insert_attempts(rows)
    db.session.commit()
    mark_held(held)
    _reschedule([(s, error.message, error.retry_after) for s in snapshots], token, now, transient=error.transient)
    counts["total"] += len(snapshots)
    counts["failed"] += len(snapshots)
    if error.transient:
        counts["retried"] += len(snapshots)
    _save_counts(run, counts)
    db.session.commit()


_ATTEMPT_COLUMNS = tuple(column.name for column in SyncAttempt.__table__.columns if column.name != "id")


def insert_attempts(rows: list[dict]) -> list[int]:
    """Write a batch's history lines (dicts of _attempt_row) and, with them, each listing's ✗ mark
    (mark_newest), in the caller's transaction. Returns the listings whose mark another transaction holds
    right now (PostgreSQL): the caller marks them after its commit (mark_held)."""
    write_lines(rows)
    return mark_newest(rows)


def write_lines(rows: list[dict]) -> None:
    """The history lines themselves, in the caller's transaction.

    PostgreSQL: by COPY. A 400-line INSERT … VALUES carries 5,200 parameters, and parsing and planning them
    cost the server more than writing the rows; COPY streams the same rows in well under half the time
    (bench/engine_overhead.py: the history insert was the largest part of the engine's DB time per batch)."""
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(insert(SyncAttempt), rows)
        return
    # The session's own connection, so the lines commit (or roll back) with the rest of the batch.
    driver = db.session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(
        f"COPY {SyncAttempt.__tablename__} ({', '.join(_ATTEMPT_COLUMNS)}) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row([row.get(name) for name in _ATTEMPT_COLUMNS])


def mark_newest(rows: list[dict]) -> list[int]:
    """Set Listing.push_failed (✗: the newest push failed) from history lines just written (dicts with
    `listing_id` and `ok`, the later one of a listing its newest), in the caller's transaction.

    Only the listings whose mark changes are written: a batch of ✓ for listings without ✗ — the common
    case — is one statement that finds nothing to write (bench/engine_overhead.py: the engine's DB time per
    batch). PostgreSQL: the ids as arrays (see _among), and never a wait for a listing another transaction
    holds (an edit, an import: see lockable); those are returned, to be marked after the commit (mark_held)."""
    newest = {row["listing_id"]: row["ok"] for row in rows if row["listing_id"] is not None}
    failed = [listing_id for listing_id, ok in newest.items() if not ok]
    cleared = [listing_id for listing_id, ok in newest.items() if ok]
    changes = []
    if failed:
        changes.append(and_(_among(Listing.id, failed), ~Listing.push_failed))
    if cleared:
        changes.append(and_(_among(Listing.id, cleared), Listing.push_failed))
    if not changes:
        return []
    mark = _among(Listing.id, failed) if failed and cleared else bool(failed)
    if db.session.get_bind().dialect.name != "postgresql":  # one writer at a time: nothing is held
        db.session.execute(update(Listing).where(or_(*changes)).values(push_failed=mark)
                           .execution_options(synchronize_session=False))
        return []
    # One statement: the listings to change (read, not locked), those of them no one else holds (locked,
    # skipping the others), their marks written; what it answers is the listings it had to skip.
    wanted = select(Listing.id).where(or_(*changes)).cte("wanted")
    locked = (select(Listing.id).where(Listing.id.in_(select(wanted.c.id)))
              .with_for_update(skip_locked=True, key_share=True).cte("locked"))
    done = (update(Listing).where(Listing.id.in_(select(locked.c.id))).values(push_failed=mark)
            .returning(Listing.id).cte("done"))
    return list(db.session.scalars(select(wanted.c.id).where(wanted.c.id.not_in(select(done.c.id)))))


def mark_held(listing_ids: list[int]) -> None:
    """Mark the listings mark_newest had to skip, each in its own transaction (waiting for one row while
    holding none), from its newest history line: right whatever happened meanwhile."""
    newest_failed = (select(~SyncAttempt.ok).where(SyncAttempt.listing_id == Listing.id)
                     .order_by(SyncAttempt.id.desc()).limit(1).scalar_subquery())
    mark = update(Listing).where(Listing.id == bindparam("b_id")).values(push_failed=func.coalesce(newest_failed, False))
    _one_by_one((mark, {"b_id": listing_id}) for listing_id in listing_ids)


def _attempt_row(run, store, snapshot: _EntrySnapshot, codes, *, ok, will_retry, message, error_code, hint, now) -> dict:
    return {
        "run_id": run.id,
        "store_id": store.id,
        "listing_id": snapshot.listing_id,
        "listing_code": snapshot.listing_code,
        "product_code": codes.get(snapshot.product_id),
        "quantity": snapshot.quantity,
        "entry_version": snapshot.version,
        "ok": ok,
        "will_retry": will_retry,
        "message": message,
        "error_code": error_code,
        "hint": hint,
        "created_at": now,
    }


def _close(snapshots: list[_EntrySnapshot], token: str, now, *, verified: bool = False) -> None:
    """Delete the entries still at the pushed version; an entry with a newer version stays due (released).
    Then note on each listing what was pushed. Commits (see lockable for why in small steps)."""
    if not snapshots:
        return
    versions = {s.id: s.version for s in snapshots}
    locked, held = lockable(SyncEntry, list(versions))
    closed: set[int] = set()
    pairs = [(i, versions[i]) for i in locked]
    if pairs and db.session.get_bind().dialect.name == "postgresql":
        # One statement for the batch, the pairs as two arrays (see _among), the rows found by their key.
        ids = [i for i, _v in pairs]
        at = _int_arrays("closing", id=ids, version=[v for _i, v in pairs])
        closed.update(db.session.scalars(
            delete(SyncEntry).where(_among(SyncEntry.id, ids), SyncEntry.id == at.c.id, SyncEntry.version == at.c.version)
            .returning(SyncEntry.id).execution_options(synchronize_session=False)
        ))
        pairs = []
    for start in range(0, len(pairs), 500):
        closed.update(
            db.session.scalars(
                delete(SyncEntry)
                .where(tuple_(SyncEntry.id, SyncEntry.version).in_(pairs[start : start + 500]))
                .returning(SyncEntry.id)
                .execution_options(synchronize_session=False)
            )
        )
    _release_ids([i for i in locked if i not in closed], token)
    db.session.commit()
    # Held by an edit right now: that edit gives the entry a newer version, so it is released, not closed.
    _let_go(held, token)

    deadline = now + timedelta(seconds=int(current_app.config.get("SYNC_REFLECTION_WINDOW_SECONDS", 3600)))
    table = Listing.__table__
    pushed = {
        "last_pushed_at": now,
        "reflected": True if verified else None,
        "reflection_checked_at": now if verified else None,
        "reflection_deadline": None if verified else deadline,
        "reflection_error": None,
        "drifted": False,
        "unexplained_decrease": None,
        "updated_at": now,
    }
    statement = update(table).where(table.c.id == bindparam("b_id")).values(
        last_pushed_quantity=bindparam("b_quantity"), mall_expected=bindparam("b_quantity"), **pushed
    )
    quantities = {s.listing_id: s.quantity for s in snapshots}
    locked_listings, held_listings = lockable(Listing, list(quantities))
    if locked_listings and db.session.get_bind().dialect.name == "postgresql":
        # One statement for the batch, its ids and quantities as two arrays: 400 single-row UPDATEs (even
        # pipelined by executemany) cost PostgreSQL twice as much (bench/engine_overhead.py --statements).
        batch = _int_arrays("pushed", id=locked_listings, quantity=[quantities[i] for i in locked_listings])
        db.session.execute(
            # The ids once more as = ANY: the rows are then found by their key whatever the catalog's size
            # (joined to the arrays alone, PostgreSQL may read the whole table).
            update(table).where(_among(table.c.id, locked_listings), table.c.id == batch.c.id)
            .values(last_pushed_quantity=batch.c.quantity, mall_expected=batch.c.quantity, **pushed)
        )
    elif locked_listings:
        db.session.execute(statement, [{"b_id": i, "b_quantity": quantities[i]} for i in locked_listings])
    db.session.commit()
    _one_by_one((statement, {"b_id": i, "b_quantity": quantities[i]}) for i in held_listings)


def _let_go(held: list[int], token: str) -> None:
    """Give back entries an edit holds right now, one row per transaction (never waiting for one row lock
    while holding another)."""
    _one_by_one(
        (update(SyncEntry).where(SyncEntry.id == entry_id, SyncEntry.leased_by == token)
         .values(lease_until=None, leased_by=None).execution_options(synchronize_session=False), None)
        for entry_id in held
    )


def _release_ids(ids: list[int], token: str) -> None:
    if ids:
        db.session.execute(
            update(SyncEntry)
            .where(_among(SyncEntry.id, ids), SyncEntry.leased_by == token)
            .values(lease_until=None, leased_by=None)
            .execution_options(synchronize_session=False)
        )


def release_leftovers(token: str) -> None:
    """At the end of a round: give back whatever is still leased to this round (entries skipped because
    an edit held them when their batch went out). They are due again at once."""
    ids = list(db.session.scalars(select(SyncEntry.id).where(SyncEntry.leased_by == token)))
    locked, held = lockable(SyncEntry, ids)
    _release_ids(locked, token)
    db.session.commit()
    _let_go(held, token)


def _reschedule(failed: list[tuple[_EntrySnapshot, Optional[str], Optional[float]]], token: str, now, *, transient: bool) -> None:
    """Keep failed entries open: due again after the backoff, unless a newer change already made them due."""
    if not failed:
        return
    table = SyncEntry.__table__
    rows = {}
    for snapshot, message, retry_after in failed:
        delay = retry_delay(snapshot.attempts + 1, retry_after) if transient else timedelta(seconds=PARK_SECONDS)
        rows[snapshot.id] = {"b_id": snapshot.id, "b_version": snapshot.version, "b_due": now + delay, "b_error": message}
    # Same version: our failure is the latest news, apply the backoff. A newer version keeps its due_at (now).
    backoff = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values(due_at=bindparam("b_due"), attempts=table.c.attempts + 1, last_error=bindparam("b_error"),
                lease_until=None, leased_by=None, updated_at=now)
    )
    locked, held = lockable(SyncEntry, list(rows))
    if locked:
        db.session.execute(backoff, [rows[i] for i in locked])
        _release_ids(locked, token)
    db.session.commit()
    # Held by an edit right now: the edit makes the entry due with a newer version; just let go of it.
    _let_go(held, token)


def release(ids: list[int], token: str, error: Optional[MallError] = None) -> None:
    """Give claimed entries back untouched (after the whole call failed, they wait with the batch's backoff)."""
    if not ids:
        return
    values = {"lease_until": None, "leased_by": None}
    if error is not None:
        values["due_at"] = utcnow() + (retry_delay(1, error.retry_after) if error.transient else timedelta(seconds=PARK_SECONDS))
    locked, held = lockable(SyncEntry, ids)
    for start in range(0, len(locked), 1000):
        db.session.execute(
            update(SyncEntry)
            .where(_among(SyncEntry.id, locked[start : start + 1000]), SyncEntry.leased_by == token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    _let_go(held, token)


def _start_run(store: Store, trigger: str) -> SyncRun:
    run = SyncRun(store_id=store.id, trigger=trigger, status="running", started_at=utcnow())
    db.session.add(run)
    db.session.commit()
    return run


def _save_counts(run: SyncRun, counts: dict) -> None:
    db.session.execute(
        update(SyncRun).where(SyncRun.id == run.id).values(**counts).execution_options(synchronize_session=False)
    )


def _finish_run(run: SyncRun, store: Store, counts: dict, error: Optional[MallError], started: float) -> None:
    now = utcnow()
    run = db.session.get(SyncRun, run.id, populate_existing=True)
    for key, value in counts.items():
        setattr(run, key, value)
    run.finished_at = now
    run.duration_ms = int((time.monotonic() - started) * 1000)
    if error is not None:
        run.status = "failed"
        run.message = error.message
    elif counts["failed"] and counts["succeeded"]:
        run.status = "partial"
    elif counts["failed"]:
        run.status = "failed"
        run.message = _first_failure(run.id)
    else:
        run.status = "success"
    health = {}
    if error is not None or (counts["failed"] and not counts["succeeded"]):
        health = {
            "consecutive_failures": Store.consecutive_failures + 1,
            "last_error": run.message,
            "last_error_at": now,
        }
    elif counts["succeeded"]:
        health = {"consecutive_failures": 0, "last_success_at": now}
    if health:
        db.session.execute(
            update(Store).where(Store.id == store.id).values(**health).execution_options(synchronize_session=False)
        )
    db.session.commit()


def _first_failure(run_id: int) -> Optional[str]:
    return db.session.scalar(
        select(SyncAttempt.message).where(SyncAttempt.run_id == run_id, SyncAttempt.ok.is_(False)).limit(1)
    )


def _record_blocked(store: Store, trigger: str, reason: str) -> Optional[SyncRun]:
    """The gate is closed: one ✗ line for the run (never one per item), and none again while nothing changed.

    The run's message is the reason code (pages show it in the reader's language with describe()); a
    blocked store's last run is refreshed instead of adding a new one every sweep.
    """
    now = utcnow()
    pending = db.session.scalar(select(db.func.count()).select_from(SyncEntry).where(SyncEntry.store_id == store.id))
    if not pending and trigger == "schedule":
        return None
    last = db.session.scalar(select(SyncRun).where(SyncRun.store_id == store.id).order_by(SyncRun.id.desc()).limit(1))
    if last is not None and last.status == "blocked" and last.message == reason:
        last.finished_at = now
        last.total = last.failed = pending
        db.session.commit()
        return last
    run = SyncRun(
        store_id=store.id, trigger=trigger, status="blocked", total=pending, failed=pending,
        message=reason, started_at=now, finished_at=now, duration_ms=0,
    )
    db.session.add(run)
    db.session.execute(
        update(Store).where(Store.id == store.id)
        .values(last_error=message_for(reason), last_error_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return run


def describe(message: Optional[str]) -> Optional[str]:
    """A stored message for display: our reason codes in the reader's language, the mall's words as they are."""
    if message in MESSAGES:
        return str(MESSAGES[message])
    return message


def hint_for_run(run: SyncRun) -> Optional[str]:
    """Which troubleshooting check a run-level ✗ points to."""
    if run.message == CODE_NOT_APPLIED:
        return HINT_APPLICATION
    return None
