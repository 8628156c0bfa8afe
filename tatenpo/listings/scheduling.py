"""Putting many listings on the sync schedule at once, by the rules of tatenpo.inventory.

inventory.schedule and inventory.pushed_quantity read a few attributes of a listing (its id, store, sync
flag, cap and its product's 販売可能数). For 100,000 listings an ORM object each is the slow part, so these
helpers read those attributes with one query per 900 listings and hand plain objects to the inventory rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select

from .. import inventory
from ..extensions import db
from ..models import Listing, Product, Store, SyncEntry
from .bulk import BulkWriter

CHUNK = 900


@dataclass(frozen=True, slots=True)
class ProductStock:
    sellable: int
    stock_managed: bool


@dataclass(frozen=True, slots=True)
class ListingState:
    """What inventory.schedule / pushed_quantity read of a listing."""

    id: int
    store_id: int
    sync_enabled: bool
    max_quantity: Optional[int]
    product: ProductStock
    store: Store


def states(where, stores: dict[int, Store]) -> list[ListingState]:
    """The linked listings matching `where`, with their product's stock as it is now in this transaction."""
    rows = db.session.execute(
        select(Listing.id, Listing.store_id, Listing.sync_enabled, Listing.max_quantity, Product.on_hand,
               Product.allocated, Product.stock_managed)
        .join(Product, Product.id == Listing.product_id)
        .where(where)
    )
    return [
        ListingState(id_, store_id, enabled, maximum, ProductStock(max(0, on_hand - allocated), managed), stores[store_id])
        for id_, store_id, enabled, maximum, on_hand, allocated, managed in rows
    ]


def all_stores() -> dict[int, Store]:
    return {store.id: store for store in db.session.scalars(select(Store))}


def schedule(ids: list[int], stores: dict[int, Store]) -> int:
    """inventory.schedule for these listings (the upsert that bumps an open entry's version)."""
    count = 0
    for start in range(0, len(ids), CHUNK):
        count += inventory.schedule(states(Listing.id.in_(ids[start : start + CHUNK]), stores))
    return count


def schedule_products(product_ids: list[int], stores: dict[int, Store]) -> int:
    """inventory.schedule for every listing of these products (after their stock changed)."""
    count = 0
    for start in range(0, len(product_ids), CHUNK):
        count += inventory.schedule(states(Listing.product_id.in_(product_ids[start : start + CHUNK]), stores))
    return count


def schedule_new(bulk: BulkWriter, store: Store, ids: list[int], now) -> int:
    """Sync entries for listings this transaction created. They cannot have an entry yet, so a plain insert
    does what inventory.schedule's upsert would; the quantity is inventory.pushed_quantity's."""
    count = 0
    stores = {store.id: store}
    for start in range(0, len(ids), CHUNK):
        rows = []
        for state in states(Listing.id.in_(ids[start : start + CHUNK]), stores):
            quantity = inventory.pushed_quantity(state)
            if quantity is not None:
                rows.append((state.id, store.id, quantity, 1, now, 0, now, now))
        bulk.insert(
            SyncEntry.__table__,
            ("listing_id", "store_id", "target_quantity", "version", "due_at", "attempts", "created_at", "updated_at"),
            rows,
        )
        count += len(rows)
    if count:
        db.session.info.setdefault(inventory.STORES_CHANGED, set()).add(store.id)
    return count
