"""Changing an EC site: what the change means for its sync schedule."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tatenpo.models import Store, SyncEntry, utcnow
from tatenpo.platform.extensions import db
from tatenpo.setup import stores
from tatenpo.stock import inventory


def _park_entries(app, store, make):
    product = make.product(on_hand=4)
    make.listing(store, product)
    with app.app_context():
        inventory.set_stock(product.id, 5)
        entry = db.session.scalar(select(SyncEntry))
        entry.due_at = utcnow() + timedelta(hours=1)  # as after a login failure
        row = db.session.get(Store, store.id)
        row.connection_ok = False
        db.session.commit()


def test_new_credentials_bring_parked_entries_due_at_once_and_clear_the_connection_test(app, make):
    store = make.store(mall="yahoo", secrets={"seller_id": "snbx-1", "access_token": "old-token"})
    _park_entries(app, store, make)
    with app.app_context():
        row = db.session.get(Store, store.id)
        stores.update_store(row, credentials={"seller_id": "snbx-1", "access_token": "new-token"})
        db.session.commit()
        assert db.session.scalar(select(SyncEntry.due_at)) <= utcnow()
        assert row.connection_ok is None


def test_saving_without_new_credentials_leaves_the_schedule_alone(app, make):
    store = make.store(mall="yahoo", secrets={"seller_id": "snbx-1", "access_token": "token"})
    _park_entries(app, store, make)
    with app.app_context():
        row = db.session.get(Store, store.id)
        stores.update_store(row, name="新しい名前", credentials={"seller_id": "snbx-1", "access_token": ""})
        db.session.commit()
        assert db.session.scalar(select(SyncEntry.due_at)) > utcnow()
        assert row.connection_ok is False
