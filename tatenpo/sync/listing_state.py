"""Where each listing stands with the mall, as one word for a badge: waiting in the sync schedule (同期待ち),
failed (✗), pushed but not yet shown by the mall (未反映), pushed and confirmed (✓), never pushed, or not
synced at all (not pushed under tatenpo.stock.rules: store 停止中, sync off, 在庫管理しない, unlinked). Also
the same states as SQL conditions, for filters.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Protocol

from sqlalchemy import DateTime, and_, bindparam, exists, func, not_, or_, select
from sqlalchemy.orm import aliased

from tatenpo.models import Listing, Product, Store, SyncAttempt, SyncEntry, utcnow
from tatenpo.platform.extensions import db
from tatenpo.stock import rules

PENDING = "pending"  # 同期待ち
FAILED = "failed"  # ✗
UNREFLECTED = "unreflected"  # 未反映
OK = "ok"  # ✓
NEVER = "never"  # 未同期: linked and synced, but nothing pushed yet
OFF = "off"  # not pushed: store 停止中, sync off for the listing, product 在庫管理しない, or unlinked

FILTERS = (PENDING, FAILED, UNREFLECTED)


@dataclass
class ListingBadge:
    """Where one listing stands with its mall: what its sync badge shows."""

    listing: Listing | BadgeListing
    state: str
    message: Optional[str] = None  # the mall's message for ✗, the log line for 未反映
    attempt: Optional[SyncAttempt | _Attempt] = None  # the newest push (from with_states: its ok/will_retry/message)


def states(listings: Iterable[Listing]) -> dict[int, ListingBadge]:
    """The state of each listing (two queries for the whole page, whatever its size). A listing's product is
    read for 在庫管理しない: load it with the listings."""
    listings = list(listings)
    ids = [listing.id for listing in listings]
    if not ids:
        return {}
    entries = {
        e.listing_id: e for e in db.session.scalars(select(SyncEntry).where(SyncEntry.listing_id.in_(ids)))
    }
    newest = (
        select(func.max(SyncAttempt.id)).where(SyncAttempt.listing_id.in_(ids)).group_by(SyncAttempt.listing_id)
    )
    attempts = {a.listing_id: a for a in db.session.scalars(select(SyncAttempt).where(SyncAttempt.id.in_(newest)))}
    result = {}
    for listing in listings:
        entry = entries.get(listing.id)
        attempt = attempts.get(listing.id)
        managed = listing.product is not None and listing.product.stock_managed
        result[listing.id] = ListingBadge(listing, *_state(listing, managed, entry, attempt), attempt=attempt)
    return result


@dataclass(frozen=True, slots=True)
class BadgeStore:
    """What a badge reads of a store."""

    id: int
    name: str
    auto_sync: bool
    immediate_sync: bool


@dataclass(frozen=True, slots=True)
class BadgeListing:
    """What a badge reads of a listing (and `_state` of it), without loading it as an ORM object."""

    id: int
    store_id: int
    product_id: Optional[int]
    code: str
    sync_enabled: bool
    stock_managed: bool  # its product's (False when unlinked)
    reflected: Optional[bool]
    reflection_error: Optional[str]
    store: BadgeStore


@dataclass(frozen=True, slots=True)
class _Entry:
    last_error: Optional[str]
    due_at: datetime


@dataclass(frozen=True, slots=True)
class _Attempt:
    ok: bool
    will_retry: bool
    message: Optional[str]


# What a listing's badge is made of, in the order `read_state` reads it.
_STATE_COLUMNS = (
    Listing.id, Listing.store_id, Listing.product_id, Listing.code, Listing.sync_enabled, Product.stock_managed,
    Listing.reflected, Listing.reflection_error, Store.name, Store.auto_sync, Store.immediate_sync, SyncEntry.id,
    SyncEntry.last_error, SyncEntry.due_at, SyncAttempt.id, SyncAttempt.ok, SyncAttempt.will_retry, SyncAttempt.message,
)


def with_states(products):
    """SELECT each row of `products` (a subquery with the product's `id`) with each of its listings and what
    the listing's state is made of: one statement for a whole page of the product table and its hundreds of
    listings, in plain columns. A product without listings comes once, with NULLs; `read_state` reads the rest."""
    newest = select(func.max(SyncAttempt.id)).where(SyncAttempt.listing_id == Listing.id).correlate(Listing)
    return (
        select(products, *_STATE_COLUMNS)
        .select_from(products)
        .outerjoin(Listing, Listing.product_id == products.c.id)
        .outerjoin(Product, Product.id == Listing.product_id)
        .outerjoin(Store, Store.id == Listing.store_id)
        .outerjoin(SyncEntry, SyncEntry.listing_id == Listing.id)
        .outerjoin(SyncAttempt, SyncAttempt.id == newest.scalar_subquery())
    )


def read_state(columns, stores: dict[int, BadgeStore]) -> Optional[ListingBadge]:
    """The state of the listing in a `with_states` row's trailing columns (None: no listing). `stores` keeps
    one BadgeStore per store across the rows of a statement."""
    (id_, store_id, product_id, code, enabled, managed, reflected, reflection_error, store_name, auto_sync,
     immediate, entry_id, last_error, due_at, attempt_id, ok, will_retry, message) = columns
    if id_ is None:
        return None
    store = stores.get(store_id)
    if store is None:
        store = stores[store_id] = BadgeStore(store_id, store_name, auto_sync, immediate)
    listing = BadgeListing(id_, store_id, product_id, code, enabled, bool(managed), reflected, reflection_error, store)
    entry = _Entry(last_error, due_at) if entry_id is not None else None
    attempt = _Attempt(ok, will_retry, message) if attempt_id is not None else None
    return ListingBadge(listing, *_state(listing, listing.stock_managed, entry, attempt), attempt=attempt)


class _BadgeStoreSource(Protocol):
    """What `_state` reads of a store: a Store, or a BadgeStore."""

    @property
    def auto_sync(self) -> bool: ...


class _BadgeSource(Protocol):
    """What `_state` reads of a listing: a Listing, or a BadgeListing."""

    @property
    def product_id(self) -> Optional[int]: ...

    @property
    def sync_enabled(self) -> bool: ...

    @property
    def reflected(self) -> Optional[bool]: ...

    @property
    def reflection_error(self) -> Optional[str]: ...

    @property
    def store(self) -> _BadgeStoreSource: ...


def _state(
    listing: _BadgeSource, stock_managed: bool, entry: Optional[SyncEntry | _Entry],
    attempt: Optional[SyncAttempt | _Attempt],
) -> tuple[str, Optional[str]]:
    """The badge's state and message; `stock_managed` is the listing's product's."""
    failed = attempt is not None and not attempt.ok
    if entry is not None:
        # A permanent failure parks its entry (wrong password: due again only in an hour, sync/push.py): ✗, not
        # merely waiting. Once the entry is due again (a stock edit, 今すぐ同期, new credentials, the hour passed)
        # a new push is on its way: 同期待ち, and the row polls until that push lands.
        if failed and not attempt.will_retry and entry.due_at > utcnow():
            return FAILED, attempt.message
        return PENDING, entry.last_error
    linked = listing.product_id is not None
    if not rules.is_pushed(linked, listing.sync_enabled, stock_managed, listing.store.auto_sync):
        return OFF, None
    if failed:
        return FAILED, attempt.message
    if listing.reflected is False:
        return UNREFLECTED, listing.reflection_error
    if attempt is not None or listing.reflected is True:
        return OK, None
    return NEVER, None


def condition(state: str, managed=None):
    """A WHERE condition on Listing for one of FILTERS: the listings whose badge shows that state (`_state`
    as SQL), so a filter never lists a row whose badge says otherwise — a failure being retried is 同期待ち,
    an old failure of a listing no longer pushed is not ✗. `managed`: the listing's product's stock_managed
    where the statement has it at hand (else it is looked up by id)."""
    if state == PENDING:
        # Started from the schedule's entries (IN: both databases can begin with them), each checked for a
        # parked failure.
        entry = aliased(SyncEntry)
        return and_(Listing.id.in_(select(entry.listing_id)), not_(_parked_failure()))
    # ✗ and 未反映 start from their marked listings (partial indexes), each looked up in the schedule by its
    # listing (EXISTS): during a full push the schedule holds the whole catalog, too many to gather first.
    if state == FAILED:
        # The newest push failed: the mark the push keeps with the history (sync.push.mark_newest).
        return and_(Listing.push_failed, or_(_parked_failure(), and_(not_(_has_entry()), _pushed(managed))))
    if state == UNREFLECTED:
        # The rules as one expression: SQLite, which has no statistics, would otherwise read "product_id IS NOT
        # NULL" as a range of ix_listings_product_id (every linked listing) rather than take the few 未反映
        # listings from their partial index (ix_listings_unreflected).
        return and_(Listing.reflected.is_(False), not_(Listing.push_failed), not_(_has_entry()),
                    func.coalesce(_pushed(managed), False).is_(True))
    raise ValueError(state)


def _has_entry():
    entry = aliased(SyncEntry)
    return exists().where(entry.listing_id == Listing.id)


def _parked_failure():
    """`_state`'s ✗ with an entry: the newest push failed for good (no retry) and the entry is parked until
    later (sync.push parks it an hour). Once it is due again, a new push is on its way: 同期待ち."""
    entry, newest = aliased(SyncEntry), aliased(SyncAttempt)
    retries = (select(newest.will_retry).where(newest.listing_id == Listing.id).order_by(newest.id.desc())
               .limit(1).scalar_subquery())
    # The time of each execution, not of the statement's building: pages keep their statements.
    now = bindparam("state_now", callable_=utcnow, type_=DateTime())
    return and_(Listing.push_failed, exists().where(entry.listing_id == Listing.id, entry.due_at > now),
                not_(func.coalesce(retries, False)))


def _pushed(managed=None):
    """rules.is_pushed for the listing; its product's stock_managed is `managed`, or read by id, as its store's
    auto_sync is (aliases: the statement around may select products or stores itself)."""
    product, store = aliased(Product), aliased(Store)
    if managed is None:
        managed = select(product.stock_managed).where(product.id == Listing.product_id).scalar_subquery()
    return rules.is_pushed_sql(
        Listing.product_id, Listing.sync_enabled, managed,
        Listing.store_id.in_(select(store.id).where(store.auto_sync.is_(True))).self_group(),
    )
