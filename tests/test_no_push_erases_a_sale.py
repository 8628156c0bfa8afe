"""No push erases a sale: a sale on the mall whose order has not reached Tatenpo yet is never overwritten by
an absolute push. The push reads the mall first and holds the listing until the order arrives; after
ORDER_WAIT_SECONDS it is flagged for the shop to adopt as a sale or overwrite. Real sandbox malls over HTTP."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tatenpo.models import Listing, Product, StockChangeKind, StockHistory, Store, SyncEntry
from tatenpo.orders import intake, reading
from tatenpo.platform.extensions import db
from tatenpo.sync import decreases, readback
from tatenpo.sync.push import push_store
from tests.test_sync_engine import Shop

ADDRESS = "order-7-cafe@orders.tatenpo.local"


@pytest.fixture
def shop(app, make, sandbox):
    """A 楽天 sandbox store whose single item Tatenpo pushed to 15, confirmed by a read-back."""
    app.config.update(MALL_RETRIES=0, ORDER_WAIT_SECONDS=600)
    shop = Shop(app, make, sandbox, "rakuten", items=1, order_mail_address=ADDRESS)
    sandbox._call("POST", f"/_sandbox/stores/{shop.remote['id']}", json={"order_mail": ADDRESS})
    shop.set_stock(0, 15)
    with app.app_context():
        push_store(shop.store.id, "cli")
        readback.read_back(shop.store.id)
    assert shop.mall_stock(0) == 15
    return shop


def sell_on_mall(shop, quantity: int = 1) -> bytes:
    """A buyer purchases on the mall: its count falls at once; the order mail it sends is returned, unsent."""
    item = shop.items[0]
    placed = shop.sandbox._call("POST", f"/_sandbox/stores/{shop.remote['id']}/orders",
                                json={"items": [{"code": item["code"], "variant": item["variant"],
                                                 "quantity": quantity}]}).json()
    mails = shop.sandbox._call("GET", f"/_sandbox/stores/{shop.remote['id']}/outbox").json()["mails"]
    mail = next(m for m in mails if m["order_number"] == placed["order_number"])
    return requests.get(mail["raw"], timeout=10).content


def push(app, shop):
    with app.app_context():
        db.session.execute(SyncEntry.__table__.update().values(due_at=db.func.current_timestamp()))
        db.session.commit()
        push_store(shop.store.id, "cli")


def listing(app, shop) -> Listing:
    with app.app_context():
        row = db.session.get(Listing, shop.listings[0].id)
        db.session.expunge(row)
        return row


def test_a_push_waits_for_the_order_of_a_sale_it_has_not_seen_and_then_pushes_the_right_count(app, shop):
    mail = sell_on_mall(shop)  # mall: 15 → 14; the order mail is late
    shop.set_stock(0, 20)  # the shop receives 5 more meanwhile

    push(app, shop)
    assert shop.mall_stock(0) == 14  # held: pushing 20 would have erased the sale
    with app.app_context():
        entry = db.session.scalar(select(SyncEntry))
        assert entry.held_since is not None and "order" in entry.last_error

        store = db.session.get(Store, shop.store.id)
        reading.read(intake.receive(mail, store, recipient=ADDRESS, via="smtp").id)
        product = db.session.get(Product, shop.products[0].id)
        assert (product.on_hand, product.allocated) == (20, 1)

    push(app, shop)
    assert shop.mall_stock(0) == 19


def test_after_the_wait_the_decrease_is_flagged_and_adopting_it_books_the_sale(app, shop):
    app.config["ORDER_WAIT_SECONDS"] = 0
    sell_on_mall(shop, 2)  # 15 → 13, and the mail never comes
    shop.set_stock(0, 20)

    push(app, shop)
    assert shop.mall_stock(0) == 13
    assert listing(app, shop).unexplained_decrease == 2

    with app.app_context():
        decreases.adopt(shop.listings[0].id)
        db.session.commit()
        product = db.session.get(Product, shop.products[0].id)
        assert product.on_hand == 18
        kinds = list(db.session.scalars(select(StockHistory.kind).order_by(StockHistory.id.desc()).limit(1)))
        assert kinds == [StockChangeKind.MALL_SALE]
    push(app, shop)
    assert shop.mall_stock(0) == 18
    assert listing(app, shop).unexplained_decrease is None


def test_overwriting_a_flagged_decrease_pushes_tatenpos_count_as_it_is(app, shop):
    app.config["ORDER_WAIT_SECONDS"] = 0
    sell_on_mall(shop)
    shop.set_stock(0, 20)
    push(app, shop)
    assert listing(app, shop).unexplained_decrease == 1

    with app.app_context():
        decreases.overwrite(shop.listings[0].id)
        db.session.commit()
    push(app, shop)
    assert shop.mall_stock(0) == 20


def test_a_store_that_treats_unexplained_decreases_as_sales_books_them_and_pushes_at_once(app, shop):
    with app.app_context():
        db.session.get(Store, shop.store.id).adopt_unexplained_decrease = True
        db.session.commit()
    sell_on_mall(shop, 3)  # 15 → 12
    shop.set_stock(0, 20)

    push(app, shop)
    push(app, shop)
    assert shop.mall_stock(0) == 17
    with app.app_context():
        assert db.session.get(Product, shop.products[0].id).on_hand == 17


def test_a_sale_tatenpo_already_booked_is_no_reason_to_hold(app, shop):
    mail = sell_on_mall(shop)
    with app.app_context():
        store = db.session.get(Store, shop.store.id)
        reading.read(intake.receive(mail, store, recipient=ADDRESS, via="smtp").id)
    push(app, shop)
    assert shop.mall_stock(0) == 14
    assert listing(app, shop).unexplained_decrease is None


def test_a_rise_on_the_mall_is_overwritten_as_before(app, shop):
    shop.sandbox.set_stock(shop.remote["id"], [{"code": shop.items[0]["code"], "variant": shop.items[0]["variant"],
                                                "quantity": 40}])
    shop.set_stock(0, 16)
    push(app, shop)
    assert shop.mall_stock(0) == 16
