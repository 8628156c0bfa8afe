"""受注API polling through the real database, Redis and the sandbox malls: the cursor and its overlap, one
poller per store, a failed poll kept with the mall's reason, the sweep queueing due stores, mail + API = one
order, statuses applied once, FBA orders kept but never allocating, and `flask orders poll`."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from tatenpo import jobs
from tatenpo.malls import family_of
from tatenpo.models import Listing, Order, Product, StockHistory, Store, utcnow
from tatenpo.orders import polling
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import redis


class Shop:
    """A sandbox store and its Tatenpo twin with the order API on: every sandbox item a listed product."""

    def __init__(self, app, make, sandbox, mall="rakuten", items=3, **fields):
        self.app, self.sandbox = app, sandbox
        self.remote = sandbox.create_store(mall, items=items)
        self.store = make.store(mall=mall, endpoint=self.remote["endpoint"], secrets=self.remote["credentials"],
                                order_api=True, **fields)
        make.application(malls=(family_of(mall),))
        sandbox.set_stock(self.remote["id"], [{"code": i["code"], "variant": i["variant"], "quantity": 10}
                                              for i in sandbox.items(self.remote["id"])])
        self.items = sandbox.items(self.remote["id"])
        self.products = [make.product(code=f"P{self.store.id}-{n}", on_hand=10) for n in range(len(self.items))]
        self.listings = [make.listing(self.store, product, item_code=item["code"], variant_code=item["variant"],
                                      attributes={"sku": item["sku"]} if mall == "shopify" else {})
                         for product, item in zip(self.products, self.items)]

    def buy(self, index=0, quantity=1, **extra):
        item = self.items[index]
        return self.sandbox._call("POST", f"/_sandbox/stores/{self.remote['id']}/orders", json={
            "items": [{"code": item["code"], "variant": item["variant"], "quantity": quantity}], **extra}).json()

    def set_status(self, number, status):
        return self.sandbox._call("POST", f"/_sandbox/stores/{self.remote['id']}/orders/"
                                          f"{number.replace('#', '%23')}/status", json={"status": status})

    def poll(self, since=None):
        with self.app.app_context():
            return polling.poll(self.store.id, since=since)

    def product(self, index=0):
        with self.app.app_context():
            product = db.session.get(Product, self.products[index].id)
            return product.on_hand, product.allocated


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("mall", ["rakuten", "yahoo", "amazon", "shopify"])
def test_a_poll_creates_the_order_only_the_api_knows_and_allocates_once(app, make, sandbox, mall):
    shop = Shop(app, make, sandbox, mall)
    number = shop.buy(quantity=2)["order_number"]

    first, again = shop.poll(), shop.poll()

    assert [(o["number"], o["created"]) for o in first.orders] == [(number, True)] and first.ok
    assert again.ok and again.orders == []  # the overlap reads it again: nothing moves twice
    assert shop.product() == (10, 2)
    with app.app_context():
        order = db.session.scalar(select(Order))
        assert order.sources == ["api"] and order.mall_status
        assert db.session.get(Store, shop.store.id).order_polled_at is not None


@pytest.mark.parametrize("mall, cancel, ship", [("rakuten", "900", "500"), ("yahoo", "4", "5"),
                                                ("amazon", "Canceled", "Shipped"),
                                                ("shopify", "cancelled", "FULFILLED")])
def test_cancel_and_ship_on_the_mall_apply_once(app, make, sandbox, mall, cancel, ship):
    shop = Shop(app, make, sandbox, mall)
    cancelled = shop.buy(0, 2)["order_number"]
    shipped = shop.buy(1, 3)["order_number"]
    shop.poll()
    shop.set_status(cancelled, cancel)
    shop.set_status(shipped, ship)

    shop.poll()
    shop.poll()

    assert shop.product(0) == (10, 0)  # released: back on sale
    assert shop.product(1) == (7, 0)  # shipped: out of the warehouse
    with app.app_context():
        assert count(StockHistory) == 4  # two allocations, one release, one shipment


def test_mail_then_api_is_one_order_and_the_api_ships_it(app, make, sandbox):
    from tests.test_orders import deliver

    from sandbox.order_mails import compose

    shop = Shop(app, make, sandbox, "rakuten", order_mail_address="order-poll@orders.tatenpo.local")
    placed = shop.buy(0, 2)
    item = placed["order"]["items"][0]
    raw = compose("rakuten", shop_name="テスト", to="order-poll@orders.tatenpo.local",
                  order_number=placed["order_number"], ordered_at=datetime.now(timezone.utc),
                  items=[{**item, "choices": []}])
    with app.app_context():
        deliver(raw, shop.store.id)
    shop.set_status(placed["order_number"], "500")

    result = shop.poll()

    assert [(o["created"], o["status"], o["sources"]) for o in result.orders] == [(False, "shipped", ["mail", "api"])]
    assert shop.product() == (8, 0)
    with app.app_context():
        assert count(Order) == 1


def test_an_fba_order_is_kept_but_never_allocates(app, make, sandbox):
    shop = Shop(app, make, sandbox, "amazon")
    shop.buy(0, 1, fba=True)
    mfn = shop.buy(1, 1)["order_number"]

    result = shop.poll()

    assert sorted((o["moves_stock"]) for o in result.orders) == [False, True]
    assert shop.product(0) == (10, 0) and shop.product(1) == (10, 1)
    with app.app_context():
        assert db.session.scalar(select(Order).where(Order.number == mfn)).moves_stock is True


def test_the_cursor_follows_the_newest_update_and_the_next_poll_reads_from_it_less_the_overlap(app, make, sandbox):
    shop = Shop(app, make, sandbox, "amazon")
    shop.buy()
    first = shop.poll()
    with app.app_context():
        cursor = db.session.get(Store, shop.store.id).order_cursor_at
    assert cursor is not None and first.cursor == cursor
    second = shop.poll()
    overlap = timedelta(seconds=app.config["ORDER_POLL_OVERLAP_SECONDS"])
    assert second.since == cursor - overlap and second.cursor == cursor


def test_a_first_poll_reads_back_order_poll_first_hours(app, make, sandbox):
    shop = Shop(app, make, sandbox, "yahoo")
    result = shop.poll()
    assert result.ok and utcnow() - result.since >= timedelta(hours=app.config["ORDER_POLL_FIRST_HOURS"])
    with app.app_context():
        assert db.session.get(Store, shop.store.id).order_cursor_at is not None  # from now on


def test_a_failed_poll_keeps_the_malls_reason_and_changes_nothing_then_recovers(app, make, sandbox):
    shop = Shop(app, make, sandbox, "rakuten")
    shop.buy()
    sandbox.faults(shop.remote["id"], auth="wrong")

    failed = shop.poll()

    assert not failed.ok and "ES01-01" in failed.error
    with app.app_context():
        store = db.session.get(Store, shop.store.id)
        assert store.order_poll_error and "ES01-01" in store.order_poll_error and store.order_cursor_at is None
        assert count(Order) == 0
        assert [s.id for s in polling.failing_stores()] == [shop.store.id]
    sandbox.faults(shop.remote["id"], auth="")
    assert shop.poll().ok
    with app.app_context():
        assert db.session.get(Store, shop.store.id).order_poll_error is None and count(Order) == 1


def test_one_poller_per_store(app, make, sandbox):
    shop = Shop(app, make, sandbox, "rakuten")
    with app.app_context():
        held = redis().lock(polling.LOCK_KEY.format(store_id=shop.store.id), timeout=30)
        assert held.acquire(blocking=False)
        try:
            with pytest.raises(polling.PollBusy):
                polling.poll(shop.store.id)
            assert jobs.poll_orders(shop.store.id) == {"store": shop.store.id, "busy": True}
        finally:
            held.release()
        assert polling.poll(shop.store.id).ok


def test_the_sweep_queues_stores_whose_poll_is_due_once(app, make, sandbox):
    shop = Shop(app, make, sandbox, "rakuten", order_poll_seconds=60)
    off = make.store("yahoo", order_api=False)
    with app.app_context():
        first = jobs.sweep()["orders"]
        again = jobs.sweep()["orders"]
        assert first == [shop.store.id] and again == []  # queued once until the job runs
        assert off.id not in first
        jobs.poll_orders(shop.store.id)
        assert polling.due() == []  # polled just now: due again in 60 s
        later = utcnow() + timedelta(seconds=61)
        assert polling.due(later) == [shop.store.id]


def test_a_store_override_of_the_interval(app, make, sandbox):
    shop = Shop(app, make, sandbox, "rakuten", order_poll_seconds=600)
    with app.app_context():
        polling.poll(shop.store.id)
        assert polling.due(utcnow() + timedelta(seconds=300)) == []
        assert polling.due(utcnow() + timedelta(seconds=601)) == [shop.store.id]


def test_orders_poll_in_the_shell_prints_the_orders_it_created(app, make, sandbox, runner):
    shop = Shop(app, make, sandbox, "rakuten")
    number = shop.buy(quantity=2)["order_number"]

    result = runner.invoke(args=["orders", "poll", "--store", str(shop.store.id), "--json"])

    assert result.exit_code == 0, result.output
    polled, = json.loads(result.output)
    assert [(o["number"], o["created"], o["status"]) for o in polled["orders"]] == [(number, True, "received")]
    text = runner.invoke(args=["orders", "poll", "--store", str(shop.store.id)])
    assert text.exit_code == 0 and "0 created or changed" in text.output


def test_orders_poll_since_and_its_bad_input(app, make, sandbox, runner):
    shop = Shop(app, make, sandbox, "yahoo")
    shop.buy()
    future = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    result = runner.invoke(args=["orders", "poll", "--store", str(shop.store.id), "--since", future, "--json"])
    assert result.exit_code == 0 and json.loads(result.output)[0]["orders"] == []
    bad = runner.invoke(args=["orders", "poll", "--store", str(shop.store.id), "--since", "yesterday"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output
    missing = runner.invoke(args=["orders", "poll", "--store", "99999"])
    assert missing.exit_code != 0 and "no store 99999" in missing.output
    with app.app_context():
        assert count(Order) == 0


def test_orders_poll_fails_with_the_reason_when_the_mall_refuses(app, make, sandbox, runner):
    shop = Shop(app, make, sandbox, "amazon")
    sandbox.faults(shop.remote["id"], auth="wrong")
    result = runner.invoke(args=["orders", "poll", "--store", str(shop.store.id)])
    assert result.exit_code == 1 and "failed" in result.output


def test_a_ftp_store_has_no_order_api_to_poll(app, make, runner):
    store = make.store("rakuten-ftp", order_api=True)
    result = runner.invoke(args=["orders", "poll", "--store", str(store.id)])
    assert result.exit_code != 0 and "no order API" in result.output
    with app.app_context():
        assert store.id not in polling.due()


def test_unlinked_lines_stay_unlinked_until_linked(app, make, sandbox):
    shop = Shop(app, make, sandbox, "rakuten")
    with app.app_context():
        db.session.delete(db.session.get(Listing, shop.listings[0].id))
        db.session.commit()
    shop.buy(0, 1)
    shop.poll()
    with app.app_context():
        order = db.session.scalar(select(Order))
        assert order.lines[0].listing_id is None and order.lines[0].variant_code
    assert shop.product(0) == (10, 0)


def test_orders_route_switches_the_order_api_and_refuses_bad_input(app, make, runner):
    store = make.store("yahoo")
    on = runner.invoke(args=["orders", "route", str(store.id), "--api", "on", "--interval", "90", "--json"])
    assert on.exit_code == 0, on.output
    data = json.loads(on.output)
    assert data["api"]["on"] is True and data["api"]["interval"] == 90
    bad = runner.invoke(args=["orders", "route", str(store.id), "--interval", "5"])
    assert bad.exit_code != 0 and "30" in bad.output
    ftp = make.store("rakuten-ftp")
    refused = runner.invoke(args=["orders", "route", str(ftp.id), "--api", "on"])
    assert refused.exit_code != 0
    with app.app_context():
        assert db.session.get(Store, store.id).order_poll_seconds == 90
        assert db.session.get(Store, ftp.id).order_api is False


def test_an_order_that_cannot_be_applied_fails_the_poll_and_keeps_the_cursor(app, make, sandbox, monkeypatch):
    from tatenpo.orders import mall_orders

    shop = Shop(app, make, sandbox, "rakuten")
    shop.buy()

    def broken(store, report, *, source):
        raise RuntimeError("boom")

    monkeypatch.setattr(mall_orders, "apply", broken)
    result = shop.poll()
    assert not result.ok and "boom" in result.error
    with app.app_context():
        store = db.session.get(Store, shop.store.id)
        assert store.order_cursor_at is None and "boom" in store.order_poll_error
