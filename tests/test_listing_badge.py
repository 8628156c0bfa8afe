"""The sync badge of a listing whose last push failed for good (✗, its schedule entry parked for an hour): it
stays ✗ without polling while parked, turns 同期待ち and polls as soon as a new push is due (a stock edit, or
今すぐ同期 making the parked entry due), and shows the outcome of that push (✓) without a reload. Against the
sandbox mall over real HTTP, with the real push."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tatenpo.models import SyncEntry, utcnow
from tatenpo.platform.extensions import db
from tatenpo.sync.push import push_store

from .test_sync_engine import Shop

HX = {"HX-Request": "true"}


@pytest.fixture
def refused(app, make, sandbox):
    """A sandbox 楽天 store whose first push was refused at login (✗, permanent): its entry is parked."""
    app.config.update(MALL_RETRIES=0, MALL_BACKOFF_SECONDS=0.1, MALL_TIMEOUT_SECONDS=5)
    shop = Shop(app, make, sandbox, "rakuten", items=1, name="楽天バッジ店")
    shop.faults(auth="wrong")
    shop.set_stock(0, 4)
    with app.app_context():
        assert push_store(shop.store.id, "manual").run.status == "failed"
        entry = db.session.scalar(select(SyncEntry).where(SyncEntry.store_id == shop.store.id))
        assert entry.due_at > utcnow()  # parked (sync/push.py PARK_SECONDS)
    return shop


def _rows(client, shop) -> dict[str, str]:
    return {"product": client.get(f"/products/{shop.products[0].id}/row", headers=HX).get_data(as_text=True),
            "listing": client.get(f"/listings/{shop.listings[0].id}/row", headers=HX).get_data(as_text=True)}


def test_a_parked_failure_shows_a_cross_and_does_not_poll(refused, client, auth):
    auth.login()
    for name, row in _rows(client, refused).items():
        assert 'data-state="failed"' in row and "hx-trigger" not in row, name


def test_a_stock_edit_after_a_failure_shows_waiting_and_polls_until_the_push_lands(app, refused, client, auth):
    auth.login()
    saved = client.post(f"/products/{refused.products[0].id}/stock", data={"on_hand": "9"}, headers=HX)
    assert 'data-state="pending"' in saved.get_data(as_text=True) and "同期待ち" in saved.get_data(as_text=True)
    assert "hx-trigger" in saved.get_data(as_text=True)
    for name, row in _rows(client, refused).items():
        assert 'data-state="pending"' in row and "同期待ち" in row and 'hx-trigger="every' in row, name

    refused.faults(auth=None)  # the shop fixed the login: the push that was due lands
    with app.app_context():
        assert push_store(refused.store.id, "manual").run.status == "success"
    assert refused.mall_stock(0) == 9
    for name, row in _rows(client, refused).items():
        assert 'data-state="ok"' in row and "hx-trigger" not in row, name


def test_a_parked_entry_made_due_again_shows_waiting_and_a_new_failure_shows_the_cross_again(app, refused, client, auth):
    auth.login()
    with app.app_context():  # what 今すぐ同期 and new credentials do (setup/stores.py): due now, same target
        db.session.execute(update(SyncEntry).where(SyncEntry.store_id == refused.store.id).values(due_at=utcnow()))
        db.session.commit()
    for name, row in _rows(client, refused).items():
        assert 'data-state="pending"' in row and 'hx-trigger="every' in row, name

    with app.app_context():
        assert push_store(refused.store.id, "manual").run.status == "failed"  # still refused: parked again
    for name, row in _rows(client, refused).items():
        assert 'data-state="failed"' in row and "hx-trigger" not in row, name
