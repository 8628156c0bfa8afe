"""Where each listing stands with the mall, as one word for a badge: waiting in the sync schedule (同期待ち),
failed (✗), pushed but not yet shown by the mall (未反映), pushed and confirmed (✓), never pushed, or not
synced at all (store 停止中, sync off, unlinked). Also the same states as SQL conditions, for filters.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, exists, func, select

from tatenpo.models import Listing, Store, SyncAttempt, SyncEntry
from tatenpo.platform.extensions import db

PENDING = "pending"  # 同期待ち
FAILED = "failed"  # ✗
UNREFLECTED = "unreflected"  # 未反映
OK = "ok"  # ✓
NEVER = "never"  # 未同期: linked and synced, but nothing pushed yet
OFF = "off"  # not pushed: store 停止中, sync off for the listing, or unlinked

FILTERS = (PENDING, FAILED, UNREFLECTED)


@dataclass
class ListingState:
    listing: Listing  # or a BadgeListing (with_states)
    state: str
    message: Optional[str] = None  # the mall's message for ✗, the log line for 未反映
    attempt: Optional[SyncAttempt] = None  # the newest push (from with_states: its ok/will_retry/message)


def _latest_attempt_ids():
    """Subquery: the newest SyncAttempt id per listing."""
    return (
        select(SyncAttempt.listing_id, func.max(SyncAttempt.id).label("attempt_id"))
        .where(SyncAttempt.listing_id.is_not(None))
        .group_by(SyncAttempt.listing_id)
        .subquery()
    )


def states(listings: Iterable[Listing]) -> dict[int, ListingState]:
    """The state of each listing (two queries for the whole page, whatever its size)."""
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
        result[listing.id] = ListingState(listing, *_state(listing, entry, attempt), attempt=attempt)
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
    reflected: Optional[bool]
    reflection_error: Optional[str]
    store: BadgeStore


@dataclass(frozen=True, slots=True)
class _Entry:
    last_error: Optional[str]


@dataclass(frozen=True, slots=True)
class _Attempt:
    ok: bool
    will_retry: bool
    message: Optional[str]


# What a listing's badge is made of, in the order `read_state` reads it.
_STATE_COLUMNS = (
    Listing.id, Listing.store_id, Listing.product_id, Listing.code, Listing.sync_enabled, Listing.reflected,
    Listing.reflection_error, Store.name, Store.auto_sync, Store.immediate_sync, SyncEntry.id, SyncEntry.last_error,
    SyncAttempt.id, SyncAttempt.ok, SyncAttempt.will_retry, SyncAttempt.message,
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
        .outerjoin(Store, Store.id == Listing.store_id)
        .outerjoin(SyncEntry, SyncEntry.listing_id == Listing.id)
        .outerjoin(SyncAttempt, SyncAttempt.id == newest.scalar_subquery())
    )


def read_state(columns, stores: dict[int, BadgeStore]) -> Optional[ListingState]:
    """The state of the listing in a `with_states` row's trailing columns (None: no listing). `stores` keeps
    one BadgeStore per store across the rows of a statement."""
    (id_, store_id, product_id, code, enabled, reflected, reflection_error, store_name, auto_sync, immediate,
     entry_id, last_error, attempt_id, ok, will_retry, message) = columns
    if id_ is None:
        return None
    store = stores.get(store_id)
    if store is None:
        store = stores[store_id] = BadgeStore(store_id, store_name, auto_sync, immediate)
    listing = BadgeListing(id_, store_id, product_id, code, enabled, reflected, reflection_error, store)
    entry = _Entry(last_error) if entry_id is not None else None
    attempt = _Attempt(ok, will_retry, message) if attempt_id is not None else None
    return ListingState(listing, *_state(listing, entry, attempt), attempt=attempt)


def _state(listing: Listing, entry: Optional[SyncEntry], attempt: Optional[SyncAttempt]) -> tuple[str, Optional[str]]:
    store: Store = listing.store
    failed = attempt is not None and not attempt.ok
    if entry is not None:
        # A permanent failure that keeps the entry open (e.g. wrong password) is ✗, not merely waiting.
        if failed and not attempt.will_retry:
            return FAILED, attempt.message
        return PENDING, entry.last_error
    if listing.product_id is None or not listing.sync_enabled or not store.auto_sync:
        return OFF, None
    if failed:
        return FAILED, attempt.message
    if listing.reflected is False:
        return UNREFLECTED, listing.reflection_error
    if attempt is not None or listing.reflected is True:
        return OK, None
    return NEVER, None


def condition(state: str):
    """A WHERE condition on Listing for one of FILTERS."""
    if state == PENDING:
        return exists().where(SyncEntry.listing_id == Listing.id)
    if state == FAILED:
        latest = _latest_attempt_ids()
        return Listing.id.in_(
            select(latest.c.listing_id)
            .join(SyncAttempt, SyncAttempt.id == latest.c.attempt_id)
            .where(SyncAttempt.ok.is_(False))
        )
    if state == UNREFLECTED:
        return and_(Listing.reflected.is_(False))
    raise ValueError(state)
