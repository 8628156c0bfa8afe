"""Putting an import's listings on the sync schedule at once, by the rules of tatenpo.stock.inventory.

inventory.schedule and inventory.pushed_quantity read a few attributes of a listing; for 100,000 listings an
ORM object each is the slow part, so these helpers hand them inventory.PushableListing rows (one query per
900 listings).
"""
from __future__ import annotations

from tatenpo.listings.bulk import BulkWriter
from tatenpo.models import Listing, Store, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory

CHUNK = 900


def schedule(ids: list[int], stores: dict[int, Store]) -> int:
    """inventory.schedule for these listings (the upsert that bumps an open entry's version)."""
    count = 0
    for start in range(0, len(ids), CHUNK):
        count += inventory.schedule(inventory.pushable_listings(Listing.id.in_(ids[start : start + CHUNK]), stores))
    return count


def schedule_new(bulk: BulkWriter, store: Store, ids: list[int], now) -> int:
    """Sync entries for listings this transaction created. They cannot have an entry yet, so a plain insert
    does what inventory.schedule's upsert would; the quantity is inventory.pushed_quantity's."""
    count = 0
    stores = {store.id: store}
    for start in range(0, len(ids), CHUNK):
        rows = []
        for state in inventory.pushable_listings(Listing.id.in_(ids[start : start + CHUNK]), stores):
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
