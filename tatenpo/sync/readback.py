"""Step 8 of the seed: does the mall show what we pushed? And did someone change the stock on the mall?

Read-back: after a push, each listing is 確認中 (reflected None) with a deadline. Reads repeat with a
growing gap (10 s, 20 s, 40 s … since the push) until the mall shows the pushed quantity (反映済み) or the
deadline passes (60 minutes by default: Yahoo can lag tens of minutes), which flags it 未反映.
The candidates come from the recent SyncAttempt rows of the store (an index on store and time), so the
cost follows what was pushed recently, never the size of the catalog.

Drift: hourly (per store), the quantities of every pushed listing that has nothing pending are read in
batches and compared with what Tatenpo last pushed; a difference marks the listing `drifted` until the shop
chooses to overwrite the mall or adopt the mall's value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select, update

from tatenpo.malls.base import HINT_ITEM, ItemRef, MallError
from tatenpo.models import Listing, Product, StockChangeKind, StockHistory, Store, SyncAttempt, SyncEntry, User, utcnow
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.sync.push import lockable, open_connector

READ_CHUNK = 1000
FIRST_RECHECK_SECONDS = 10

MESSAGE_NOT_FOUND = _l("The mall does not have this item (check 商品管理番号 / SKU and the item on the mall).")
MESSAGE_NOT_REFLECTED = _l("Not reflected within %(minutes)s minutes: the mall shows %(shown)s, Tatenpo pushed %(pushed)s.")


def reflection_window() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("SYNC_REFLECTION_WINDOW_SECONDS", 3600)))


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


def _awaiting(store_id: int, now: datetime) -> list[tuple[SyncAttempt, Listing]]:
    """The newest ✓ attempt of each listing still waiting for its read-back."""
    since = now - 2 * reflection_window()
    rows = db.session.execute(
        select(SyncAttempt, Listing)
        .join(Listing, Listing.id == SyncAttempt.listing_id)
        .where(
            SyncAttempt.store_id == store_id,
            SyncAttempt.created_at >= since,
            SyncAttempt.ok.is_(True),
            SyncAttempt.reflected.is_not(True),
            Listing.reflection_deadline.is_not(None),
        )
        .order_by(SyncAttempt.id)
    ).all()
    newest: dict[int, tuple[SyncAttempt, Listing]] = {}
    for attempt, listing in rows:
        newest[listing.id] = (attempt, listing)  # ordered by id: the last one wins
    return list(newest.values())


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


def read_back(store_id: int, *, connector=None, force: bool = False) -> ReadBackOutcome:
    """Read the recently pushed listings of a store that are due for a check; commit the results."""
    outcome = ReadBackOutcome()
    store = db.session.get(Store, store_id)
    if store is None:
        return outcome
    now = utcnow()
    due, later = [], []
    for attempt, listing in _awaiting(store_id, now):
        pushed_at = listing.last_pushed_at or attempt.created_at
        when = next_check_at(pushed_at, listing.reflection_checked_at)
        (due if force or when <= now else later).append((attempt, listing))
        if when > now:
            outcome.next_check = min(outcome.next_check or when, when)
    if not due:
        outcome.waiting = len(later)
        return outcome
    connector = connector or open_connector(store)
    if not getattr(connector, "can_read", True):
        return outcome  # the result log of the push was the check (Rakuten FTP)
    for start in range(0, len(due), READ_CHUNK):
        chunk = due[start : start + READ_CHUNK]
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
            break
        _apply_reads(chunk, results, outcome)
        db.session.commit()
    outcome.waiting += len(later)
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


def drift_due(store: Store, now: Optional[datetime] = None) -> bool:
    now = now or utcnow()
    return store.last_drift_check_at is None or now - store.last_drift_check_at >= drift_interval()


def check_drift(store_id: int, *, connector=None) -> DriftOutcome:
    """Compare the mall's stock with what Tatenpo last pushed, for every pushed listing with nothing pending."""
    outcome = DriftOutcome()
    store = db.session.get(Store, store_id)
    if store is None:
        return outcome
    connector = connector or open_connector(store)
    if not getattr(connector, "can_read", True):
        store.last_drift_check_at = utcnow()  # nothing can be read on this route
        db.session.commit()
        return outcome
    after = 0
    while True:
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
            .limit(READ_CHUNK)
        ).all()
        if not listings:
            break
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
