"""The ✗ mark (Listing.push_failed): the push keeps it with the history lines it writes, the ✗ filters read
it, and it always says what the newest line of the listing says — the badge's ✗ and the filter agree. Every
filter (同期待ち, ✗, 未反映) lists exactly the listings whose badge shows its state."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select, text, update

from tatenpo.malls.base import HINT_ITEM, HINT_LOGIN, ItemResult, MallError
from tatenpo.models import Listing, SyncAttempt, SyncEntry, SyncRun, utcnow
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.sync import listing_state, push, retention
from tests.sql_plans import sqlite_plan, statements_run
from tests.test_migrations import _empty_database, _flask


class ScriptedMall:
    """The mall's answers, set by the test: a listing id in `refused` gets a permanent ✗, a `down` mall fails
    the whole call. It cannot read (a push then sends without reading the mall first)."""

    max_batch = 400
    can_read = False

    def __init__(self):
        self.refused: set[int] = set()
        self.down = False

    def push(self, items):
        if self.down:
            raise MallError("ログインに失敗しました", transient=False, hint=HINT_LOGIN)
        return [ItemResult(key=item.key, ok=False, message="SKUが見つかりません", hint=HINT_ITEM)
                if item.key in self.refused else ItemResult(key=item.key, ok=True) for item in items]


@pytest.fixture
def shop(app, make):
    make.application(malls=("rakuten",))
    store = make.store(mall="rakuten", name="楽天店")
    listings = [make.listing(store, make.product(code=f"M-{n}")) for n in range(3)]
    return store, listings


def _edit_and_push(app, store, listings, mall, trigger="schedule"):
    """Change the stock of each listing's product (so each is due), push the store: the run's (status,
    succeeded, failed)."""
    with app.app_context():
        for listing in listings:
            inventory.adjust_stock(listing.product_id, "+1")
        db.session.commit()
        run = push.push_store(store.id, trigger, connector=mall).run
        return run.status, run.succeeded, run.failed


def _marked(app) -> set[int]:
    with app.app_context():
        return set(db.session.scalars(select(Listing.id).where(Listing.push_failed)))


def _newest_failed(app) -> set[int]:
    """The listings whose newest history line failed, read from the history itself."""
    with app.app_context():
        newest = select(func.max(SyncAttempt.id)).where(SyncAttempt.listing_id.is_not(None)).group_by(
            SyncAttempt.listing_id)
        return set(db.session.scalars(
            select(SyncAttempt.listing_id).where(SyncAttempt.id.in_(newest), SyncAttempt.ok.is_(False))))


def _filtered(app) -> set[int]:
    """What the ✗ filter of 販売データ selects (listing_state.condition)."""
    with app.app_context():
        return set(db.session.scalars(select(Listing.id).where(listing_state.condition(listing_state.FAILED))))


def _badged(app, ids) -> set[int]:
    with app.app_context():
        listings = db.session.scalars(select(Listing).where(Listing.id.in_(ids))).all()
        return {i for i, badge in listing_state.states(listings).items() if badge.state == listing_state.FAILED}


def _products_page(client) -> str:
    return client.get("/products?state=failed").get_data(as_text=True)


def _agree(app, listings, client) -> set[int]:
    """The mark, the history, the 販売データ filter, the badges and the 商品・在庫 ✗ page all say the same ✗
    listings; returns them."""
    marked = _marked(app)
    assert marked == _newest_failed(app) == _filtered(app) == _badged(app, [l.id for l in listings])
    page = _products_page(client)
    assert {l.id for l in listings if f">{l.code}<" in page} == marked
    return marked


def test_a_failed_push_marks_the_listing_and_a_later_ok_push_clears_it(app, make, shop, client, auth):
    store, listings = shop
    mall = ScriptedMall()
    mall.refused = {listings[1].id}
    auth.login()
    assert _edit_and_push(app, store, listings, mall) == ("partial", 2, 1)
    assert _agree(app, listings, client) == {listings[1].id}
    page = _products_page(client)
    assert ">M-1<" in page and "SKUが見つかりません" in page and ">M-0<" not in page

    mall.refused = set()
    _edit_and_push(app, store, [listings[1]], mall)
    assert _agree(app, listings, client) == set()


def test_a_whole_call_failure_marks_every_listing_of_the_batch(app, shop, client, auth):
    store, listings = shop
    mall = ScriptedMall()
    mall.down = True
    auth.login()
    assert _edit_and_push(app, store, listings, mall)[0] == "failed"
    assert _agree(app, listings, client) == {l.id for l in listings}

    mall.down = False
    assert _edit_and_push(app, store, listings, mall, trigger="manual")[0] == "success"
    assert _agree(app, listings, client) == set()


def test_the_filter_and_the_badge_agree_after_a_re_park_and_after_the_prune(app, shop, client, auth):
    store, listings = shop
    mall = ScriptedMall()
    mall.refused = {listings[0].id, listings[2].id}
    auth.login()
    _edit_and_push(app, store, listings, mall)
    assert _agree(app, listings, client) == {listings[0].id, listings[2].id}
    # A newer edit brings a parked listing back (同期待ち): the mark stays until a push lands.
    with app.app_context():
        inventory.adjust_stock(listings[0].product_id, "+1")
        db.session.commit()
        assert listing_state.states([db.session.get(Listing, listings[0].id)])[listings[0].id].state == \
            listing_state.PENDING
    assert _marked(app) == {listings[0].id, listings[2].id}
    # Pushed again and refused again: parked again, ✗ again; the other one was fixed on the mall meanwhile.
    mall.refused = {listings[0].id}
    _edit_and_push(app, store, [listings[0], listings[2]], mall, trigger="manual")
    assert _agree(app, listings, client) == {listings[0].id}

    # The prune takes every line but each listing's newest: the marks, the badges and the filter stay.
    with app.app_context():
        db.session.execute(update(SyncAttempt).values(created_at=utcnow() - timedelta(days=400)))
        db.session.commit()
        assert retention.prune(days=90).attempts > 0
        assert db.session.scalar(select(func.count()).select_from(SyncAttempt)) == len(listings)
    assert _agree(app, listings, client) == {listings[0].id}


def test_the_mark_follows_the_newest_line_of_each_listing_in_a_batch(app, shop):
    # insert_attempts is the one place history lines are written; given a listing twice, the later line wins.
    store, listings = shop
    with app.app_context():
        run = SyncRun(store_id=store.id, trigger="schedule", status="partial", started_at=utcnow())
        db.session.add(run)
        db.session.flush()
        rows = [_line(run, store, listings[0], ok=False), _line(run, store, listings[1], ok=False),
                _line(run, store, listings[1], ok=True), _line(run, store, None, ok=False)]
        assert push.insert_attempts(rows) == []  # nothing else holds these listings
        db.session.commit()
    assert _marked(app) == _newest_failed(app) == {listings[0].id}


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="row locks: PostgreSQL only")
def test_a_listing_held_by_another_transaction_is_marked_after_the_commit_without_waiting(app, shop):
    store, listings = shop
    held_id = listings[0].id
    with app.app_context():
        other = create_engine(db.engine.url).connect()  # an edit holding the listing's row
        transaction = other.begin()
        other.execute(text("SELECT id FROM listings WHERE id = :id FOR NO KEY UPDATE"), {"id": held_id})
        try:
            run = SyncRun(store_id=store.id, trigger="schedule", status="failed", started_at=utcnow())
            db.session.add(run)
            db.session.flush()
            held = push.insert_attempts([_line(run, store, listing, ok=False) for listing in listings])
            db.session.commit()
            assert held == [held_id]  # not waited for: the others are marked with the lines
            assert not db.session.get(Listing, held_id, populate_existing=True).push_failed
        finally:
            transaction.rollback()
            other.close()
        push.mark_held(held)
    assert _marked(app) == _newest_failed(app) == {l.id for l in listings}


def _line(run, store, listing, *, ok) -> dict:
    return {"run_id": run.id, "store_id": store.id, "listing_id": listing.id if listing is not None else None,
            "listing_code": listing.code if listing is not None else "gone", "product_code": None, "quantity": 1,
            "entry_version": 1, "ok": ok, "will_retry": False, "message": None if ok else "SKUが見つかりません",
            "error_code": None, "hint": None, "reflected": None, "read_back_quantity": None, "read_back_at": None,
            "created_at": utcnow()}


def test_the_migration_marks_exactly_the_listings_whose_newest_attempt_failed(tmp_path, database_url):
    with _empty_database(database_url, tmp_path) as url:
        before = _flask("db", "upgrade", "2b8f6d4e0c31", database_url=url, instance=tmp_path)
        assert before.returncode == 0, before.stderr
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                _history_before_the_mark(connection)
            upgraded = _flask("db", "upgrade", database_url=url, instance=tmp_path)
            assert upgraded.returncode == 0, upgraded.stderr
            with engine.connect() as connection:
                marked = dict(connection.execute(text("SELECT code, push_failed FROM listings")).all())
            # Newest ✗ (FAILED, FAILED-AGAIN); a ✗ fixed by a later ✓ (FIXED), only ✓ (OK), never pushed (NEW).
            assert {code for code, failed in marked.items() if failed} == {"FAILED", "FAILED-AGAIN"}
            assert set(marked) == {"FAILED", "FAILED-AGAIN", "FIXED", "OK", "NEW"}
            downgraded = _flask("db", "downgrade", "2b8f6d4e0c31", database_url=url, instance=tmp_path)
            assert downgraded.returncode == 0, downgraded.stderr
            with engine.connect() as connection:
                columns = connection.execute(text("SELECT * FROM listings LIMIT 0")).keys()
            assert "push_failed" not in columns
        finally:
            engine.dispose()


def _history_before_the_mark(connection) -> None:
    """Listings and their pushes, written the way the schema of 2b8f6d4e0c31 takes them."""
    now = utcnow()
    store = connection.execute(text(
        "INSERT INTO stores (mall, name, auto_sync, immediate_sync, safety_stock, settings, consecutive_failures, "
        "adopt_unexplained_decrease, order_api, webhooks_on, created_at, updated_at) "
        "VALUES ('rakuten', '楽天店', true, false, 0, '{}', 0, false, false, false, :now, :now) RETURNING id"),
        {"now": now}).scalar_one()
    run = connection.execute(text(
        "INSERT INTO sync_runs (store_id, trigger, status, total, succeeded, failed, retried, started_at) "
        "VALUES (:store, 'schedule', 'partial', 0, 0, 0, 0, :now) RETURNING id"), {"store": store, "now": now}
    ).scalar_one()
    ids = {}
    for code in ("FAILED", "FAILED-AGAIN", "FIXED", "OK", "NEW"):
        ids[code] = connection.execute(text(
            "INSERT INTO listings (store_id, item_code, variant_code, code, title, attributes, sync_enabled, drifted, "
            "order_code, search_text, created_at, updated_at) "
            "VALUES (:store, :code, '', :code, '', '{}', true, false, '', '', :now, :now) RETURNING id"),
            {"store": store, "code": code, "now": now}).scalar_one()
    # In the order written (ids ascending): each listing's last line here is its newest.
    for code, ok in (("FAILED", True), ("FIXED", False), ("FAILED", False), ("FAILED-AGAIN", False),
                     ("OK", True), ("FIXED", True), ("FAILED-AGAIN", False)):
        connection.execute(text(
            "INSERT INTO sync_attempts (run_id, store_id, listing_id, listing_code, quantity, ok, will_retry, "
            "created_at) VALUES (:run, :store, :listing, :code, 1, :ok, false, :now)"),
            {"run": run, "store": store, "listing": ids[code], "code": code, "ok": ok, "now": now})
    # A line whose listing was deleted since (listing_id NULL) marks nothing.
    connection.execute(text(
        "INSERT INTO sync_attempts (run_id, store_id, listing_id, listing_code, quantity, ok, will_retry, created_at) "
        "VALUES (:run, :store, NULL, 'GONE', 1, false, false, :now)"), {"run": run, "store": store, "now": now})


# (name, the listing's situation, the badge it shows). Each situation: a failed or ok newest push (and whether
# the engine retries it), an entry in the schedule due before or after now, the rules that decide whether the
# listing is pushed at all, and the mall's reflection.
SITUATIONS = [
    ("pushed and shown", dict(attempt=(True, False)), listing_state.OK),
    ("a failure being retried", dict(attempt=(False, True), entry=timedelta(seconds=30)), listing_state.PENDING),
    ("a failure parked for an hour", dict(attempt=(False, False), entry=timedelta(hours=1)), listing_state.FAILED),
    ("a parked failure due again (a stock edit)", dict(attempt=(False, False), entry=-timedelta(seconds=1)),
     listing_state.PENDING),
    ("a failure left without an entry", dict(attempt=(False, False)), listing_state.FAILED),
    ("a failure, then sync switched off", dict(attempt=(False, False), sync_enabled=False), listing_state.OFF),
    ("a failure, then the store stopped", dict(attempt=(False, False), auto_sync=False), listing_state.OFF),
    ("a parked failure of a stopped store", dict(attempt=(False, False), entry=timedelta(hours=1), auto_sync=False),
     listing_state.FAILED),
    ("a failure, then 在庫管理しない", dict(attempt=(False, False), stock_managed=False), listing_state.OFF),
    ("a failure, then unlinked", dict(attempt=(False, False), linked=False), listing_state.OFF),
    ("pushed, not shown by the mall", dict(attempt=(True, False), reflected=False), listing_state.UNREFLECTED),
    ("not shown, then sync switched off", dict(attempt=(True, False), reflected=False, sync_enabled=False),
     listing_state.OFF),
    ("waiting for its first push", dict(entry=timedelta(0)), listing_state.PENDING),
    ("never pushed", dict(), listing_state.NEVER),
]


def test_each_filter_lists_exactly_the_listings_whose_badge_shows_its_state(app, make, client, auth):
    make.application(malls=("rakuten",))
    running, stopped = make.store(name="楽天店"), make.store(name="停止中の店", auto_sync=False)
    now = utcnow()
    made = {}
    with app.app_context():
        run = SyncRun(store_id=running.id, trigger="schedule", status="partial")
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    for number, (name, situation, _badge) in enumerate(SITUATIONS):
        product = make.product(code=f"S-{number:02d}", stock_managed=situation.get("stock_managed", True))
        store = stopped if situation.get("auto_sync", True) is False else running
        listing = make.listing(store, product if situation.get("linked", True) else None, code=f"S-{number:02d}",
                               sync_enabled=situation.get("sync_enabled", True), reflected=situation.get("reflected"))
        made[listing.id] = (name, listing.code)
        with app.app_context():
            if "attempt" in situation:
                ok, will_retry = situation["attempt"]
                # An older push of the other outcome first: the badge and the filters read the newest.
                for earlier, line_ok in ((True, not ok), (False, ok)):
                    db.session.add(SyncAttempt(run_id=run_id, store_id=store.id, listing_id=listing.id,
                                               listing_code=listing.code, quantity=1, ok=line_ok,
                                               will_retry=will_retry and not earlier, message=None if line_ok else "✗"))
                    db.session.flush()
                db.session.get(Listing, listing.id).push_failed = not ok  # as sync.push.mark_newest keeps it
            if "entry" in situation:
                db.session.add(SyncEntry(listing_id=listing.id, store_id=store.id, target_quantity=1,
                                         due_at=now + situation["entry"]))
            db.session.commit()

    with app.app_context():
        listings = db.session.scalars(select(Listing).where(Listing.id.in_(made))).all()
        badges = {listing_id: badge.state for listing_id, badge in listing_state.states(listings).items()}
        in_stopped = {listing.id for listing in listings if listing.store_id == stopped.id}
    assert {made[i][0]: state for i, state in badges.items()} == {name: badge for name, _s, badge in SITUATIONS}
    auth.login()
    for state in listing_state.FILTERS:
        with app.app_context():
            filtered = set(db.session.scalars(select(Listing.id).where(listing_state.condition(state))))
        assert filtered == {i for i, badge in badges.items() if badge == state}, state
        # 商品・在庫 lists the products of those listings (each product here has one listing).
        page = client.get(f"/products?state={state}").get_data(as_text=True)
        shown = {i for i, (_name, code) in made.items() if f">{code}<" in page}
        assert shown == filtered, state
        page = client.get(f"/products?state={state}&store={stopped.id}").get_data(as_text=True)
        shown = {i for i, (_name, code) in made.items() if f">{code}<" in page}
        assert shown == filtered & in_stopped, state
    # The store filter was put to the test: the stopped store has a ✗ listing.
    assert in_stopped & {i for i, badge in badges.items() if badge == listing_state.FAILED}


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                    reason="SQLite's plans (PostgreSQL chooses by its statistics); the SQLite pass of .ci/run runs it")
@pytest.mark.parametrize("state, index", [(listing_state.FAILED, "ix_listings_push_failed"),
                                          (listing_state.UNREFLECTED, "ix_listings_unreflected")])
def test_on_sqlite_the_filters_read_the_few_listings_from_their_partial_index(app, make, client, auth, tmp_path,
                                                                              state, index):
    store = make.store(name="楽天店")
    for number in range(3):
        make.listing(store, make.product(code=f"P-{number}"), reflected=number != 0)
    with app.app_context():
        engine = db.engine
    auth.login()
    with statements_run(engine, "FROM listings") as statements:
        for page in (f"/listings?state={state}", f"/listings?state={state}&store={store.id}"):
            assert client.get(page).status_code == 200
    assert len(statements) == 4  # the capped count and the page, twice
    # The plans on the schema as the tests build it and as the migrations build it (SQLite, without
    # statistics, may settle a tie by the order the indexes were created in).
    migrated = "sqlite:///" + str(tmp_path / "migrated.db")
    assert _flask("db", "upgrade", database_url=migrated, instance=tmp_path).returncode == 0
    for schema in (engine, create_engine(migrated)):
        for statement, parameters in statements:
            plan = sqlite_plan(schema, statement, parameters)
            assert f"USING INDEX {index}" in plan, plan
