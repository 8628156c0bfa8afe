"""The stock rules: every change writes history and the sync schedule in one transaction, or nothing."""
from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select

from tatenpo.models import Product, StockChangeKind, StockHistory, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory


def _history(product_id):
    return db.session.scalars(
        select(StockHistory).where(StockHistory.product_id == product_id).order_by(StockHistory.id)
    ).all()


def _entries():
    return {e.listing_id: e for e in db.session.scalars(select(SyncEntry))}


def test_setting_stock_writes_history_and_schedules_every_synced_listing(app, make):
    product = make.product(on_hand=3)
    rakuten = make.store(mall="rakuten", auto_sync=True)
    yahoo = make.store(mall="yahoo", auto_sync=True)
    on_rakuten = make.listing(rakuten, product)
    on_yahoo = make.listing(yahoo, product)
    with app.app_context():
        user = make.user()
        entry = inventory.set_stock(product.id, 10, kind=StockChangeKind.MANUAL, user=user, note="棚卸し")
        db.session.commit()
        assert db.session.get(Product, product.id).on_hand == 10
        [history] = _history(product.id)
        assert (history.change, history.quantity_after, history.kind_enum, history.user_id, history.note) == (
            7, 10, StockChangeKind.MANUAL, user.id, "棚卸し",
        )
        assert entry.id == history.id
        entries = _entries()
        assert entries[on_rakuten.id].target_quantity == 10
        assert entries[on_yahoo.id].target_quantity == 10


def test_adjusting_stock_adds_and_subtracts(app, make):
    product = make.product(on_hand=5)
    with app.app_context():
        inventory.adjust_stock(product.id, "+3", kind=StockChangeKind.CANCELLATION)
        inventory.adjust_stock(product.id, -6, kind=StockChangeKind.ORDER)
        db.session.commit()
        assert db.session.get(Product, product.id).on_hand == 2
        assert [(h.change, h.quantity_after) for h in _history(product.id)] == [(3, 8), (-6, 2)]


@pytest.mark.parametrize(
    "value, message",
    [
        (-1, "マイナス"),
        ("abc", "整数ではありません"),
        ("1.5", "整数ではありません"),
        (1.5, "小数"),
        ("", "数量を入力"),
        (True, "整数で入力"),
        (100_000_000, "超えて"),
    ],
)
def test_invalid_stock_is_refused_with_a_reason_and_writes_nothing(app, make, value, message):
    product = make.product(on_hand=4)
    store = make.store(auto_sync=True)
    make.listing(store, product)
    with app.test_request_context():  # messages in the user's language (Japanese by default)
        with pytest.raises(inventory.StockError) as refused:
            inventory.set_stock(product.id, value)
        db.session.rollback()
        assert message in str(refused.value.message)
        assert db.session.get(Product, product.id).on_hand == 4
        assert _history(product.id) == []
        assert _entries() == {}


def test_a_change_that_would_go_below_zero_is_refused(app, make):
    product = make.product(on_hand=2)
    with app.test_request_context():
        with pytest.raises(inventory.StockError):
            inventory.adjust_stock(product.id, -3)
        db.session.rollback()
        assert db.session.get(Product, product.id).on_hand == 2
        assert _history(product.id) == []


def test_full_width_and_separated_numbers_are_understood(app, make):
    product = make.product()
    with app.app_context():
        inventory.set_stock(product.id, "１，２００")
        db.session.commit()
        assert db.session.get(Product, product.id).on_hand == 1200


def test_pushed_quantity_is_sellable_minus_safety_stock_capped_by_the_listing(app, make):
    product = make.product(on_hand=10, allocated=3)  # 販売可能数 7
    store = make.store(auto_sync=True, safety_stock=2)
    capped = make.listing(store, product, max_quantity=4)
    plain = make.listing(store, product)
    with app.app_context():
        inventory.set_stock(product.id, 10)
        db.session.commit()
        entries = _entries()
        assert entries[plain.id].target_quantity == 5
        assert entries[capped.id].target_quantity == 4


def test_safety_stock_never_pushes_a_negative_quantity(app, make):
    product = make.product(on_hand=1)
    store = make.store(auto_sync=True, safety_stock=5)
    listing = make.listing(store, product)
    with app.app_context():
        inventory.set_stock(product.id, 2)
        db.session.commit()
        assert _entries()[listing.id].target_quantity == 0


def test_listings_that_are_not_synced_get_no_schedule(app, make):
    product = make.product()
    unmanaged = make.product(stock_managed=False)
    stopped_store = make.store(auto_sync=False)
    running_store = make.store(auto_sync=True)
    make.listing(stopped_store, product)
    make.listing(running_store, product, sync_enabled=False)
    make.listing(running_store, unmanaged)
    with app.app_context():
        inventory.set_stock(product.id, 5)
        inventory.set_stock(unmanaged.id, 5)
        db.session.commit()
        assert _entries() == {}
        # …but the history is written all the same.
        assert len(_history(product.id)) == 1


def test_a_newer_change_refreshes_the_open_entry_and_raises_its_version(app, make):
    product = make.product()
    store = make.store(auto_sync=True)
    listing = make.listing(store, product)
    with app.app_context():
        inventory.set_stock(product.id, 5)
        db.session.commit()
        first = _entries()[listing.id].version
        inventory.set_stock(product.id, 7)
        db.session.commit()
        db.session.expire_all()
        entries = _entries()
        assert len(entries) == 1
        assert entries[listing.id].target_quantity == 7
        assert entries[listing.id].version == first + 1


def test_history_survives_the_deletion_of_its_product(app, make):
    product = make.product()
    with app.app_context():
        inventory.set_stock(product.id, 5)
        db.session.commit()
        db.session.delete(db.session.get(Product, product.id))
        db.session.commit()
        [row] = db.session.scalars(select(StockHistory)).all()
        assert row.product_id is None and row.product_code == product.code


def test_changing_safety_stock_reschedules_the_store(app, make):
    from tatenpo.models import Store
    from tatenpo.setup import stores

    product = make.product(on_hand=10)
    store = make.store(auto_sync=True)
    listing = make.listing(store, product)
    with app.app_context():
        stores.update_store(db.session.get(Store, store.id), safety_stock=3)
        db.session.commit()
        assert _entries()[listing.id].target_quantity == 7


def test_the_database_refuses_negative_stock_even_without_the_rules(app, make):
    from sqlalchemy.exc import IntegrityError

    product = make.product()
    with app.app_context():
        db.session.get(Product, product.id).on_hand = -1
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def _adjust_many(database_uri, redis_url, instance, product_id, times, barrier):
    import os

    os.environ["TATENPO_INSTANCE"] = instance
    from tatenpo import create_app
    from tatenpo.platform.extensions import db
    from tatenpo.stock import inventory

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_uri, "REDIS_URL": redis_url, "SECRET_KEY": "x",
                      "CREDENTIAL_KEY": "Q2hhbmdlIHRoaXMga2V5IGZvciB0ZXN0cyBvbmx5ISE="})
    barrier.wait()
    with app.app_context():
        for _ in range(times):
            inventory.adjust_stock(product_id, 1, kind=StockChangeKind.CORRECTION)
            db.session.commit()


def test_two_processes_adjusting_one_product_never_lose_an_update(app, make, redis_url, tmp_path):
    product = make.product(on_hand=0)
    store = make.store(auto_sync=True)
    listing = make.listing(store, product)
    times = 60
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    import os

    workers = [
        context.Process(target=_adjust_many, args=(uri, redis_url, os.environ["TATENPO_INSTANCE"], product.id, times, barrier))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with app.app_context():
        assert db.session.get(Product, product.id).on_hand == 2 * times
        assert db.session.scalar(select(func.count()).select_from(StockHistory)) == 2 * times
        # Each history row's result is one more than the one before: no two changes saw the same stock.
        results = sorted(h.quantity_after for h in _history(product.id))
        assert results == list(range(1, 2 * times + 1))
        assert _entries()[listing.id].target_quantity == 2 * times


def test_setting_many_stocks_at_once_follows_the_same_rules_as_one_by_one(app, make):
    store = make.store(auto_sync=True, safety_stock=1)
    one_by_one = [make.product(code=f"A-{n}", on_hand=5, allocated=n % 2) for n in range(4)]
    at_once = [make.product(code=f"B-{n}", on_hand=5, allocated=n % 2) for n in range(4)]
    listings = {p.code: make.listing(store, p) for p in one_by_one + at_once}
    targets = [9, 5, 0, 12]  # the second one is unchanged
    with app.app_context():
        for product, target in zip(one_by_one, targets):
            if target != 5:
                inventory.set_stock(product.id, target, kind=StockChangeKind.STOCK_CSV, note="在庫取込")
        changed = inventory.set_stock_many(
            {p.id: t for p, t in zip(at_once, targets)}, kind=StockChangeKind.STOCK_CSV, note="在庫取込"
        )
        db.session.commit()
        assert sorted(changed) == sorted(p.id for p, t in zip(at_once, targets) if t != 5)

        def outcome(prefix):
            stock = {p.code[2:]: p.on_hand for p in db.session.scalars(select(Product).where(Product.code.like(prefix + "%")))}
            history = sorted(
                (h.product_code[2:], h.change, h.quantity_after, h.kind, h.note)
                for h in db.session.scalars(select(StockHistory).where(StockHistory.product_code.like(prefix + "%")))
            )
            entries = _entries()
            pushed = {code[2:]: entries[listing.id].target_quantity
                      for code, listing in listings.items() if code.startswith(prefix) and listing.id in entries}
            return stock, history, pushed

        assert outcome("A-") == outcome("B-")
        assert outcome("B-")[2] == {"0": 8, "2": 0, "3": 10}  # 販売可能数 − 保留在庫 1


def test_setting_many_stocks_refuses_the_whole_batch_when_one_is_invalid(app, make):
    first, second = make.product(on_hand=3), make.product(on_hand=3)
    with app.test_request_context():
        with pytest.raises(inventory.StockError):
            inventory.set_stock_many({first.id: 7, second.id: -1}, kind=StockChangeKind.STOCK_CSV)
        db.session.rollback()
        assert {p.on_hand for p in db.session.scalars(select(Product))} == {3}
        assert db.session.scalar(select(StockHistory)) is None


# --- quantities as people type them, through every door -------------------------------------------------

HX = {"HX-Request": "true"}
HUGE = "9" * 5000


@pytest.mark.parametrize("typed, expected", [
    ("1,500", 1500), ("１，５００", 1500), ("12,345,678", 12345678), ("0012", 12), (" ７ ", 7),
])
def test_quantities_in_ascii_or_full_width_with_proper_grouping_are_read(app, typed, expected):
    with app.app_context():
        assert inventory.parse_quantity(typed) == expected


@pytest.mark.parametrize("typed, message", [
    ("1,5", "3桁ごとの区切り"), ("15,00", "3桁ごとの区切り"), ("1,,500", "3桁ごとの区切り"), (",500", "3桁ごとの区切り"),
    ("²", "整数ではありません"), ("٣", "整数ではありません"), ("①", "整数ではありません"), ("1 500", "整数ではありません"),
    (HUGE, "超えて"), ("1" + "0" * 30, "超えて"),
])
def test_odd_quantities_are_refused_with_the_reason(app, typed, message):
    with app.test_request_context():
        with pytest.raises(inventory.StockError) as refused:
            inventory.parse_quantity(typed)
        assert message in str(refused.value.message)
        assert len(str(refused.value.message)) < 200  # a huge number is not echoed back whole


@pytest.mark.parametrize("typed", ["1,5", "²", "٣", HUGE])
def test_inline_and_bulk_edits_refuse_odd_quantities_and_change_nothing(app, client, auth, make, typed):
    product = make.product(on_hand=4)
    auth.login()
    row = client.post(f"/products/{product.id}/stock", data={"on_hand": typed}, headers=HX)
    assert row.status_code == 200 and 'role="alert"' in row.get_data(as_text=True)
    page = client.post("/products/bulk", data={"ids": [product.id], "mode": "set", "quantity": typed},
                       follow_redirects=True)
    assert page.status_code == 200 and "何も変更していません" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Product, product.id).on_hand == 4
        assert _history(product.id) == []


@pytest.mark.parametrize("typed", ["1,5", "²", "٣", HUGE])
def test_stock_set_in_the_shell_refuses_odd_quantities(app, runner, make, typed):
    make.product(code="A-1", on_hand=4)
    result = runner.invoke(args=["stock", "set", "A-1", typed])
    assert result.exit_code != 0 and "Traceback" not in result.output
    with app.app_context():
        assert db.session.scalar(select(Product.on_hand).where(Product.code == "A-1")) == 4
