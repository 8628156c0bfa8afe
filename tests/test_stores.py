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


def test_stores_list_json_gives_when_each_credential_was_renewed_and_expires(app, make, runner):
    import json
    from datetime import datetime

    known = make.store(mall="rakuten", secrets={"service_secret": "s", "license_key": "k"},
                       credentials_renewed_at=datetime(2026, 9, 1, 3, 0), credentials_expire_at=datetime(2026, 11, 30, 3, 0))
    unknown = make.store(mall="rakuten", secrets={"service_secret": "s", "license_key": "k"})  # from before the dates
    added = runner.invoke(args=["stores", "add", "--mall", "amazon", "--name", "Amazon店", "--credential",
                                "seller_id=A1", "--credential", "client_id=c", "--credential", "client_secret=s",
                                "--credential", "refresh_token=r", "--json"])
    assert added.exit_code == 0, added.output
    shopify = runner.invoke(args=["stores", "add", "--mall", "shopify", "--name", "Shopify店", "--credential",
                                  "shop=my-shop", "--credential", "access_token=t", "--json"])
    listed = runner.invoke(args=["stores", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["id"]: row for row in json.loads(listed.output)}
    assert rows[known.id]["credentials_renewed_at"] == "2026-09-01T03:00:00+00:00"
    assert rows[known.id]["credentials_expire_at"] == "2026-11-30T03:00:00+00:00"
    assert rows[unknown.id]["credentials_renewed_at"] is None and rows[unknown.id]["credentials_expire_at"] is None
    amazon = rows[json.loads(added.output)["id"]]
    renewed = datetime.fromisoformat(amazon["credentials_renewed_at"])
    assert (datetime.fromisoformat(amazon["credentials_expire_at"]) - renewed).days == 365
    shop = rows[json.loads(shopify.output)["id"]]
    assert shop["credentials_renewed_at"] is not None and shop["credentials_expire_at"] is None
