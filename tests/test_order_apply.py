# ruff: noqa: F811  (the tests take test_orders' `shop` fixture by name)
"""The one rule every order door shares (tatenpo.orders.mall_orders.apply), through the real database: one order
per store and number whatever the door, the SKU the mail lacked filled in, each reported status applied once,
FBA orders kept but never allocating, older reports moving nothing."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from tatenpo.models import LineStock, Order, OrderStatus, Product, StockHistory, Store
from tatenpo.orders import book, mall_orders
from tatenpo.orders.mall_orders import MallOrder, MallOrderLine
from tatenpo.platform.extensions import db
from tests.test_orders import deliver, rakuten_mail, shop  # noqa: F401  (the fixture)

NUMBER = "300001-20261130-0000000101"
T0 = datetime(2026, 11, 30, 1, 0)


def report(status=OrderStatus.RECEIVED, mall_status="100 注文確認待ち", *, number=NUMBER, updated=T0, moves_stock=True,
           lines=None) -> MallOrder:
    return MallOrder(number=number, status=status, mall_status=mall_status,
                     lines=tuple(lines or (MallOrderLine("tea-bag-20x3", "tb20-3", 2, title="有機栽培 緑茶"),)),
                     ordered_at=T0, updated_at=updated, moves_stock=moves_stock)


def apply(store_id: int, mall_order: MallOrder, source: str = "api"):
    applied = mall_orders.apply(db.session.get(Store, store_id), mall_order, source=source)
    db.session.commit()
    return applied


def product(product_id: int) -> Product:
    return db.session.get(Product, product_id, populate_existing=True)


def moves(product_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(StockHistory).where(StockHistory.product_id == product_id))


def test_an_order_only_the_api_knows_is_created_and_allocates_once(app, shop):
    with app.app_context():
        first = apply(shop.rakuten.id, report())
        again = apply(shop.rakuten.id, report())

        assert (first.created, first.changed, again.created, again.changed) == (True, True, False, False)
        order = db.session.scalar(select(Order))
        assert (order.sources, order.mall_status, order.status) == (["api"], "100 注文確認待ち", "received")
        assert [line.stock for line in order.lines] == [LineStock.ALLOCATED.value]
        assert product(shop.tea.id).allocated == 2 and moves(shop.tea.id) == 1


def test_mail_then_api_is_one_order_that_moves_stock_once_and_notes_both_sources(app, shop):
    with app.app_context():
        deliver(rakuten_mail(NUMBER), shop.rakuten.id)
        applied = apply(shop.rakuten.id, report(mall_status="300 発送待ち"))

        assert (applied.created, applied.changed) == (False, True)
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1
        assert applied.order.sources == ["mail", "api"] and applied.order.mall_status == "300 発送待ち"
        assert product(shop.tea.id).allocated == 2 and moves(shop.tea.id) == 1


def test_api_then_mail_is_one_order(app, shop):
    with app.app_context():
        apply(shop.rakuten.id, report())
        outcome = deliver(rakuten_mail(NUMBER), shop.rakuten.id)

        assert outcome.duplicate
        assert db.session.scalar(select(Order)).sources == ["api", "mail"]
        assert product(shop.tea.id).allocated == 2


@pytest.fixture
def two_mugs(app, shop, make):
    """A second SKU of the 湯呑み, so a line naming only the item is 未紐付け."""
    with app.app_context():
        make.listing(shop.rakuten, make.product(code="MUG-RD-M", on_hand=5), item_code="yunomi-01",
                     variant_code="yn01-rd-m", attributes={"choices": ["レッド", "M"]})
    return shop


def test_the_api_fills_the_sku_the_mail_lacked_and_the_line_then_allocates_once(app, two_mugs):
    shop = two_mugs
    with app.app_context():
        # An old-style mail naming the 湯呑み by its 商品番号 only, without choices: two SKUs, so 未紐付け.
        mug_line = {"code": "yunomi-01", "variant": "", "item_number": "", "title": "湯呑み", "choices": [],
                    "quantity": 1, "price": 1650}
        deliver(rakuten_mail(NUMBER, mug_line), shop.rakuten.id)
        order = db.session.scalar(select(Order))
        assert order.lines[0].listing_id is None  # the mug has a listing per SKU: the mail alone cannot tell
        assert product(shop.mug.id).allocated == 0

        applied = apply(shop.rakuten.id, report(lines=[MallOrderLine("yunomi-01", "yn01-bl-m", 1, title="湯呑み")]))
        again = apply(shop.rakuten.id, report(lines=[MallOrderLine("yunomi-01", "yn01-bl-m", 1, title="湯呑み")]))

        line = applied.order.lines[0]
        assert (line.variant_code, line.listing_id, line.stock) == ("yn01-bl-m", shop.mug_on_rakuten.id, "allocated")
        assert applied.changed and not again.changed
        assert product(shop.mug.id).allocated == 1 and moves(shop.mug.id) == 1


def test_a_reported_shipment_ships_once_and_a_later_cancel_does_not_restock(app, shop):
    with app.app_context():
        apply(shop.rakuten.id, report())
        shipped = apply(shop.rakuten.id, report(OrderStatus.SHIPPED, "500 発送済", updated=T0 + timedelta(hours=1)))
        again = apply(shop.rakuten.id, report(OrderStatus.SHIPPED, "500 発送済", updated=T0 + timedelta(hours=1)))

        assert shipped.changed and not again.changed
        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated, moves(shop.tea.id)) == (8, 0, 2)

        cancelled = apply(shop.rakuten.id, report(OrderStatus.CANCELLED, "900 キャンセル確定",
                                                  updated=T0 + timedelta(hours=2)))
        assert cancelled.order.status == "cancelled"
        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated, moves(shop.tea.id)) == (8, 0, 2)  # 再入庫 is the shop's decision


def test_a_reported_cancel_before_shipping_releases_once_and_stays_cancelled(app, shop):
    with app.app_context():
        deliver(rakuten_mail(NUMBER), shop.rakuten.id)
        for _ in range(2):
            apply(shop.rakuten.id, report(OrderStatus.CANCELLED, "800 キャンセル確定待ち", updated=T0))
        late_ship = apply(shop.rakuten.id, report(OrderStatus.SHIPPED, "500 発送済", updated=T0 + timedelta(hours=1)))

        assert late_ship.order.status == "cancelled"
        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated, moves(shop.tea.id)) == (10, 0, 2)


def test_an_order_first_seen_cancelled_gives_back_what_it_took(app, shop):
    with app.app_context():
        applied = apply(shop.rakuten.id, report(OrderStatus.CANCELLED, "900 キャンセル確定"))

        assert applied.created and applied.order.status == "cancelled"
        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated) == (10, 0)


def test_an_older_report_moves_nothing(app, shop):
    with app.app_context():
        apply(shop.rakuten.id, report(OrderStatus.SHIPPED, "500 発送済", updated=T0 + timedelta(hours=1)))
        older = apply(shop.rakuten.id, report(OrderStatus.CANCELLED, "900 キャンセル確定", updated=T0))

        assert not older.changed
        assert (older.order.status, older.order.mall_status) == ("shipped", "500 発送済")


def test_a_fulfilled_by_amazon_order_is_kept_but_never_moves_stock(app, shop, make):
    with app.app_context():
        applied = apply(shop.rakuten.id, report(moves_stock=False))
        apply(shop.rakuten.id, report(OrderStatus.SHIPPED, "Shipped", moves_stock=False, updated=T0 + timedelta(1)))

        assert applied.created and applied.order.moves_stock is False
        assert applied.order.status == "shipped"
        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated, moves(shop.tea.id)) == (10, 0, 0)


def test_linking_a_line_of_an_fba_order_moves_nothing(app, shop, make):
    with app.app_context():
        applied = apply(shop.rakuten.id, report(moves_stock=False, lines=[MallOrderLine("unknown", "", 1)]))
        line = applied.order.lines[0]
        book.link_line(line, db.session.get(type(shop.on_rakuten), shop.on_rakuten.id))
        db.session.commit()

        assert line.listing_id == shop.on_rakuten.id and line.stock == "none"
        assert product(shop.tea.id).allocated == 0


def test_an_unknown_source_is_refused(app, shop):
    with app.app_context(), pytest.raises(ValueError):
        mall_orders.apply(db.session.get(Store, shop.rakuten.id), report(), source="fax")


def test_the_same_order_from_two_doors_at_once_is_one_order_allocating_once(app, shop):
    """Mail and API race on a new order: the unique (store, number) and the row lock keep it one."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def door(kind: str) -> None:
        try:
            with app.app_context():
                barrier.wait()
                if kind == "mail":
                    deliver(rakuten_mail(NUMBER), shop.rakuten.id)
                else:
                    apply(shop.rakuten.id, report(OrderStatus.CANCELLED if kind == "cancel" else OrderStatus.RECEIVED))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=door, args=(kind,)) for kind in ("mail", "api", "api", "cancel")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        db_errors = [e for e in errors if "locked" not in str(e) and "could not serialize" not in str(e)]
        assert not db_errors, errors
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1
        tea = product(shop.tea.id)
        # Whoever came first, the cancel (if it got through) released what was allocated, once.
        assert tea.allocated in (0, 2) and tea.on_hand == 10
        order = db.session.scalar(select(Order))
        assert tea.allocated == (0 if order.status == "cancelled" else 2)
