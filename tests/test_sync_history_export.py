"""在庫同期履歴's CSV export read and written a chunk at a time, and the push's batch writes (the history lines,
the listings' notes, the closed entries) as the engine does them on either database."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

from tatenpo.models import SyncAttempt, SyncRun, utcnow
from tatenpo.platform.extensions import db
from tatenpo.sync import push, status


def _history(app, store, lines: int):
    """`lines` attempts a second apart, newest last, and a store-level ✗ (a blocked run) in their middle."""
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        run = SyncRun(store_id=store.id, trigger="schedule", status="success", total=lines,
                      started_at=now - timedelta(hours=1))
        db.session.add(run)
        db.session.flush()
        for n in range(lines):
            db.session.add(SyncAttempt(run_id=run.id, store_id=store.id, listing_code=f"CODE-{n:03}",
                                       product_code=f"P-{n:03}", quantity=n, ok=n % 3 != 0,
                                       message=None if n % 3 else "在庫数が不正です",
                                       created_at=now - timedelta(seconds=lines - n)))
        db.session.add(SyncRun(store_id=store.id, trigger="schedule", status="blocked", total=4,
                               message="tatenpo:not-applied", started_at=now - timedelta(seconds=lines // 2, milliseconds=500)))
        db.session.commit()


def _rows(response):
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"), newline="")))


def test_the_export_is_streamed_in_the_pages_order_with_the_store_level_lines_in_place(app, make, client, auth,
                                                                                       monkeypatch):
    store = make.store(name="楽天店")
    _history(app, store, 25)
    monkeypatch.setattr(status, "EXPORT_CHUNK", 4)  # several round trips to the database for 26 lines
    auth.login()
    response = client.get("/sync/export.csv")
    assert response.is_streamed
    rows = _rows(response)
    with app.app_context():
        shown = status.history(limit=100)
    assert len(rows) == 1 + len(shown) == 1 + 26
    # Newest first, the blocked run between the attempts of its time, exactly as the page lists them.
    codes = [r[2] for r in rows[1:]]
    assert [c if c.startswith("CODE-") else "run" for c in codes] == [line.listing_code or "run" for line in shown]
    assert codes[0] == "CODE-024" and codes[-1] == "CODE-000"
    whole_run = codes.index(next(c for c in codes if not c.startswith("CODE-")))
    assert codes[whole_run - 1] == "CODE-013" and codes[whole_run + 1] == "CODE-012"
    assert "4" in codes[whole_run] and rows[1 + whole_run][5] == "✗"  # the run's item count, and its ✗
    failed = [r for r in rows[1:] if r[2] == "CODE-003"][0]
    assert failed[1] == "楽天店" and failed[5] == "✗" and failed[6] == "在庫数が不正です" and failed[4] == "3"


def test_the_export_cut_is_said_after_the_last_line_even_mid_chunk(app, make, client, auth, monkeypatch):
    store = make.store()
    _history(app, store, 10)
    monkeypatch.setattr(status, "EXPORT_CHUNK", 3)
    monkeypatch.setattr(status, "EXPORT_ROWS", 5)
    auth.login()
    rows = _rows(client.get("/sync/export.csv?result=ng"))  # the ✗ lines: 4 attempts and the blocked run
    assert len(rows) == 1 + 5 and "打ち切り" not in rows[-1][0]
    rows = _rows(client.get("/sync/export.csv"))
    assert len(rows) == 1 + 5 + 1 and rows[-1][0].startswith("5 行で打ち切りました")
    assert [r[2] for r in rows[1:6]] == ["CODE-009", "CODE-008", "CODE-007", "CODE-006", "CODE-005"]


def test_a_batch_writes_every_history_column_and_notes_what_was_pushed(app, make):
    """The batch writes (COPY and array parameters on PostgreSQL, plain statements on SQLite) keep every
    column, the verified read-back included; the ✓ entries are closed, the ✗ one stays."""
    store = make.store()
    product = make.product(on_hand=0)
    listings = [make.listing(store, product, item_code=f"item-{n}") for n in range(3)]
    with app.app_context():
        from tatenpo.models import Listing, SyncEntry
        from tatenpo.stock import inventory

        inventory.set_stock(product.id, 6)
        db.session.commit()
        entries = db.session.query(SyncEntry).order_by(SyncEntry.listing_id).all()
        assert len(entries) == 3
        run = SyncRun(store_id=store.id, trigger="manual", status="running", started_at=utcnow())
        db.session.add(run)
        db.session.commit()
        token = "test-token"
        ids = push.claim(store.id, token, 10, every_open=True, lease=60)
        items = push._renew_and_load(ids, token, 60)
        assert len(items) == 3
        results = [push.ItemResult(key=item.key, ok=True) for item, _snapshot in items[:2]]
        results.append(push.ItemResult(key=items[2][0].key, ok=False, message="=bad", error_code="E1",
                                       transient=False, hint="item"))
        push._record_results(run, store, items, results, token, {"total": 0, "succeeded": 0, "failed": 0,
                                                                 "retried": 0}, verified=True)
        lines = db.session.query(SyncAttempt).order_by(SyncAttempt.listing_id).all()
        assert [(a.listing_id, a.ok, a.quantity, a.run_id, a.store_id) for a in lines] == [
            (listings[0].id, True, 6, run.id, store.id), (listings[1].id, True, 6, run.id, store.id),
            (listings[2].id, False, 6, run.id, store.id)]
        assert lines[0].reflected is True and lines[0].read_back_quantity == 6 and lines[0].read_back_at
        assert lines[0].listing_code == listings[0].code and lines[0].product_code == product.code
        assert lines[2].message == "=bad" and lines[2].error_code == "E1" and lines[2].hint == "item"
        assert lines[2].will_retry is False and lines[2].reflected is None and lines[2].created_at
        remaining = {e.listing_id for e in db.session.query(SyncEntry)}
        assert remaining == {listings[2].id}  # ✗ parked; the two ✓ closed
        pushed = {lst.id: lst for lst in db.session.query(Listing)}
        assert pushed[listings[0].id].last_pushed_quantity == 6 and pushed[listings[0].id].mall_expected == 6
        assert pushed[listings[0].id].reflected is True and pushed[listings[2].id].last_pushed_quantity is None


def test_an_entry_edited_during_the_push_stays_due(app, make):
    """Closing compares each entry's version with the one pushed: an edit made meanwhile is pushed later."""
    store = make.store()
    product = make.product(on_hand=0)
    listing = make.listing(store, product)
    with app.app_context():
        from tatenpo.models import SyncEntry
        from tatenpo.stock import inventory

        inventory.set_stock(product.id, 4)
        db.session.commit()
        run = SyncRun(store_id=store.id, trigger="manual", status="running", started_at=utcnow())
        db.session.add(run)
        db.session.commit()
        ids = push.claim(store.id, "t", 10, every_open=True, lease=60)
        items = push._renew_and_load(ids, "t", 60)
        inventory.set_stock(product.id, 9)  # the shop's edit, after the batch was read
        db.session.commit()
        push._record_results(run, store, items, [push.ItemResult(key=items[0][0].key, ok=True)], "t",
                             {"total": 0, "succeeded": 0, "failed": 0, "retried": 0})
        entry = db.session.query(SyncEntry).filter_by(listing_id=listing.id).one()
        assert entry.target_quantity == 9 and entry.leased_by is None
