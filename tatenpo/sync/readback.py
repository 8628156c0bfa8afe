"""Step 8 (docs/FLOW.md): does the mall show what we pushed? And did someone change the stock on the mall?

Read-back: after a push, each listing is 確認中 (reflected None) with a deadline. Reads repeat with a
growing gap (10 s, 20 s, 40 s … since the push) until the mall shows the pushed quantity (反映済み) or the
deadline passes (60 minutes by default: Yahoo can lag tens of minutes), which flags it 未反映.
The candidates come from the recent SyncAttempt rows of the store (an index on store and time), so the
cost follows what was pushed recently, never the size of the catalog.

Drift: hourly (per store), the quantities of every pushed listing that has nothing pending are read in
batches and compared with what Tatenpo last pushed; a difference marks the listing `drifted` until the shop
chooses to overwrite the mall or adopt the mall's value.

Both can be cut into slices (`limit`): a job reads at most SYNC_READ_SLICE items and says where the next
slice resumes (`resume_after`), so one store's 100,000 listings never hold a worker the other stores need.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased

from tatenpo.malls.base import HINT_ITEM, ItemRef, MallError
from tatenpo.models import Listing, Product, StockChangeKind, StockHistory, Store, SyncAttempt, SyncEntry, User, utcnow
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.sync.push import lockable, open_connector

READ_CHUNK = 1000
# Candidates for a read-back are looked at this many at a time (plain columns; rows are loaded only when read).
SCAN_PAGE = 5000
FIRST_RECHECK_SECONDS = 10

MESSAGE_NOT_FOUND = _l("The mall does not have this item (check 商品管理番号 / SKU and the item on the mall).")
MESSAGE_NOT_REFLECTED = _l("Not reflected within %(minutes)s minutes: the mall shows %(shown)s, Tatenpo pushed %(pushed)s.")


def reflection_window() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("SYNC_REFLECTION_WINDOW_SECONDS", 3600)))


def slice_size() -> int:
    """How many items one read-back or drift-check job reads before it queues the rest (SYNC_READ_SLICE)."""
    return int(current_app.config.get("SYNC_READ_SLICE", 2000))


def drift_interval() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("SYNC_DRIFT_INTERVAL_SECONDS", 3600)))


def next_check_at(pushed_at: datetime, checked_at: Optional[datetime]) -> datetime:
    """The gap between reads doubles: the first re-read 10 s after the push, then 20 s, 40 s, …"""
    if checked_at is None:
        return pushed_at
    gap = max(timedelta(seconds=FIRST_RECHECK_SECONDS), checked_at - pushed_at)
    return checked_at + gap


@dataclass
class ReadBackOutcome:
    checked: int = 0
    reflected: int = 0
    not_reflected: int = 0  # given up: flagged 未反映
    waiting: int = 0  # still 確認中
    next_check: Optional[datetime] = None
    error: Optional[str] = None
    resume_after: Optional[int] = None  # a slice stopped at its limit: the next one starts after this attempt


def _awaiting(store_id: int, now: datetime, after: int, limit: int):
    """(attempt id, pushed at, last checked at) of the newest ✓ attempt of each listing still waiting for its
    read-back, by attempt id after `after`."""
    since = now - 2 * reflection_window()
    waiting = (SyncAttempt.created_at >= since, SyncAttempt.ok.is_(True), SyncAttempt.reflected.is_not(True))
    newer = aliased(SyncAttempt)
    return db.session.execute(
        select(SyncAttempt.id, Listing.last_pushed_at, SyncAttempt.created_at, Listing.reflection_checked_at)
        .join(Listing, Listing.id == SyncAttempt.listing_id)
        .where(
            SyncAttempt.store_id == store_id,
            SyncAttempt.id > after,
            *waiting,
            Listing.reflection_deadline.is_not(None),
            ~exists().where(newer.listing_id == SyncAttempt.listing_id, newer.id > SyncAttempt.id,
                            newer.created_at >= since, newer.ok.is_(True), newer.reflected.is_not(True)),
        )
        .order_by(SyncAttempt.id)
        .limit(limit)
    ).all()


def pending_read_backs(store_id: int) -> bool:
    """Is any recently pushed listing of the store still waiting for its check? (One indexed probe: the sweep
    asks this every tick.)"""
    since = utcnow() - 2 * reflection_window()
    return db.session.scalar(
        select(SyncAttempt.id)
        .join(Listing, Listing.id == SyncAttempt.listing_id)
        .where(SyncAttempt.store_id == store_id, SyncAttempt.created_at >= since, SyncAttempt.ok.is_(True),
               SyncAttempt.reflected.is_not(True), Listing.reflection_deadline.is_not(None))
        .limit(1)
    ) is not None


def read_back(store_id: int, *, connector=None, force: bool = False, limit: Optional[int] = None,
              after: int = 0) -> ReadBackOutcome:
    """Read the recently pushed listings of a store that are due for a check; commit the results. With a
    `limit`, read at most that many (the oldest pushes first, after attempt `after`) and say in
    `resume_after` where the rest begins."""
    outcome = ReadBackOutcome()
    store = db.session.get(Store, store_id)
    if store is None:
        return outcome
    now = utcnow()
    due: list[int] = []
    later = 0
    scanned = after
    while outcome.resume_after is None:
        page = _awaiting(store_id, now, scanned, SCAN_PAGE)
        for attempt_id, pushed_at, created_at, checked_at in page:
            when = next_check_at(pushed_at or created_at, checked_at)
            if force or when <= now:
                if limit is not None and len(due) >= limit:
                    outcome.resume_after = due[-1]
                    break
                due.append(attempt_id)
            else:
                later += 1
                outcome.next_check = min(outcome.next_check or when, when)
        if len(page) < SCAN_PAGE:
            break
        scanned = page[-1][0]
    if not due:
        outcome.waiting = later
        return outcome
    connector = connector or open_connector(store)
    if not getattr(connector, "can_read", True):
        outcome.resume_after = None
        return outcome  # the result log of the push was the check (Rakuten FTP)
    for start in range(0, len(due), READ_CHUNK):
        chunk = db.session.execute(
            select(SyncAttempt, Listing).join(Listing, Listing.id == SyncAttempt.listing_id)
            .where(SyncAttempt.id.in_(due[start : start + READ_CHUNK])).order_by(SyncAttempt.id)
        ).all()
        refs = [
            ItemRef(key=l.id, item_code=l.item_code, variant_code=l.variant_code or "", attributes=dict(l.attributes or {}))
            for _a, l in chunk
        ]
        try:
            results = {r.key: r for r in connector.read(refs)}
        except MallError as exc:
            # The mall could not be read now: nothing is decided, the next round tries again.
            outcome.error = exc.message
            outcome.waiting += len(due) - start
            outcome.resume_after = None  # the next round starts over, not this job's next slice
            break
        _apply_reads(chunk, results, outcome)
        db.session.commit()
    outcome.waiting += later
    return outcome


def _apply_reads(chunk, results, outcome: ReadBackOutcome) -> None:
    now = utcnow()
    window = reflection_window()
    # A listing an import is rewriting right now is checked next round (never wait on it: see lockable).
    locked, _held = lockable(Listing, [listing.id for _attempt, listing in chunk])
    locked = set(locked)
    for attempt, listing in chunk:
        result = results.get(listing.id)
        if result is None or listing.id not in locked:
            outcome.waiting += 1
            continue
        outcome.checked += 1
        pushed = listing.last_pushed_quantity
        attempt.read_back_at = now
        attempt.read_back_quantity = result.quantity
        listing.reflection_checked_at = now
        if result.quantity is not None:
            listing.mall_quantity = result.quantity
            listing.mall_quantity_at = now
        if result.quantity is not None and result.quantity == pushed:
            attempt.reflected = True
            listing.reflected = True
            listing.reflection_deadline = None
            listing.reflection_error = None
            outcome.reflected += 1
        elif result.quantity is None:
            # Malls park stock for unknown codes without an error: only this read tells the truth.
            attempt.reflected = False
            attempt.hint = HINT_ITEM
            listing.reflected = False
            listing.reflection_deadline = None
            listing.reflection_error = result.message or str(MESSAGE_NOT_FOUND)
            outcome.not_reflected += 1
        else:
            attempt.reflected = False
            listing.reflected = False
            deadline = listing.reflection_deadline or (attempt.created_at + window)
            if now >= deadline:
                listing.reflection_deadline = None
                listing.reflection_error = str(MESSAGE_NOT_REFLECTED) % {
                    "minutes": int(window.total_seconds() // 60), "shown": result.quantity, "pushed": pushed,
                }
                outcome.not_reflected += 1
            else:
                outcome.waiting += 1
                when = next_check_at(listing.last_pushed_at or attempt.created_at, now)
                outcome.next_check = min(outcome.next_check or when, when)


@dataclass
class DriftOutcome:
    checked: int = 0
    drifted: list[int] = field(default_factory=list)
    error: Optional[str] = None
    resume_after: Optional[int] = None  # a slice stopped at its limit: the next one starts after this listing


def drift_due(store: Store, now: Optional[datetime] = None) -> bool:
    now = now or utcnow()
    return store.last_drift_check_at is None or now - store.last_drift_check_at >= drift_interval()


def check_drift(store_id: int, *, connector=None, limit: Optional[int] = None, after: int = 0) -> DriftOutcome:
    """Compare the mall's stock with what Tatenpo last pushed, for every pushed listing with nothing pending
    (by listing id after `after`). With a `limit`, read at most that many and say in `resume_after` where the
    rest begins; the store counts as checked once the last slice is done."""
    outcome = DriftOutcome()
    store = db.session.get(Store, store_id)
    if store is None:
        return outcome
    connector = connector or open_connector(store)
    if not getattr(connector, "can_read", True):
        store.last_drift_check_at = utcnow()  # nothing can be read on this route
        db.session.commit()
        return outcome
    read = 0
    while True:
        if limit is not None and read >= limit:
            outcome.resume_after = after
            return outcome
        listings = db.session.scalars(
            select(Listing)
            .where(
                Listing.store_id == store_id,
                Listing.id > after,
                Listing.last_pushed_quantity.is_not(None),
                Listing.reflection_deadline.is_(None),
                ~exists().where(SyncEntry.listing_id == Listing.id),
            )
            .order_by(Listing.id)
            .limit(READ_CHUNK if limit is None else min(READ_CHUNK, limit - read))
        ).all()
        if not listings:
            break
        read += len(listings)
        after = listings[-1].id
        refs = [ItemRef(key=l.id, item_code=l.item_code, variant_code=l.variant_code or "",
                        attributes=dict(l.attributes or {})) for l in listings]
        try:
            results = {r.key: r for r in connector.read(refs)}
        except MallError as exc:
            outcome.error = exc.message
            db.session.rollback()
            return outcome  # not marked checked: the next round tries again
        now = utcnow()
        locked = set(lockable(Listing, [listing.id for listing in listings])[0])
        for listing in listings:
            result = results.get(listing.id)
            if result is None or result.quantity is None or listing.id not in locked:
                continue
            outcome.checked += 1
            listing.mall_quantity = result.quantity
            listing.mall_quantity_at = now
            listing.drifted = result.quantity != listing.last_pushed_quantity
            if listing.drifted:
                outcome.drifted.append(listing.id)
        db.session.commit()
    db.session.execute(
        update(Store).where(Store.id == store_id).values(last_drift_check_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return outcome


class DriftError(ValueError):
    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


def _drifted(listing_id: int) -> Listing:
    listing = db.session.get(Listing, listing_id)
    if listing is None or not listing.drifted:
        raise DriftError(_l("This listing no longer differs from the mall."))
    return listing


def overwrite_mall(listing_id: int) -> Listing:
    """Keep Tatenpo's stock: the listing is scheduled again, so the mall gets Tatenpo's value back.
    The caller commits."""
    listing = _drifted(listing_id)
    if inventory.schedule([listing]) == 0:
        raise DriftError(_l("This listing is not synced (unlinked, sync off, or the EC site is 停止中)."))
    listing.drifted = False
    listing.mall_expected = None  # the shop chose: the push goes out over the mall's value as it is
    return listing


def adopt_mall_value(listing_id: int, user: Optional[User] = None) -> StockHistory:
    """Take the mall's value: set 在庫数 so that what Tatenpo pushes equals what the mall shows
    (mall + 引当数 + 保留在庫). The change is recorded as a correction; the caller commits."""
    listing = _drifted(listing_id)
    if listing.product_id is None or listing.mall_quantity is None:
        raise DriftError(_l("This listing is not linked to a product."))
    product = db.session.get(Product, listing.product_id)
    target = listing.mall_quantity + product.allocated + (listing.store.safety_stock or 0)
    entry = inventory.set_stock(
        product, target, kind=StockChangeKind.CORRECTION, user=user,
        note=str(_l("Adopted the stock shown on %(store)s", store=listing.store.name)),
    )
    listing = db.session.get(Listing, listing_id)
    listing.drifted = False
    listing.mall_expected = listing.mall_quantity  # what the mall shows is now what Tatenpo expects there
    return entry
