"""受注 by mail, through the real database and Redis: a stored order mail becomes one order that allocates
stock and pushes every store at once; duplicates, forwarded copies, non-orders, 未紐付け lines, 売り越し,
出荷 and キャンセル each move stock exactly once."""
from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import select

from sandbox.order_mails import compose
from tatenpo import jobs
from tatenpo.models import (
    InboundMail,
    LineStock,
    Listing,
    MailStatus,
    Order,
    OrderStatus,
    Product,
    StockChangeKind,
    StockHistory,
    Store,
    SyncEntry,
)
from tatenpo.orders import book, intake, reading
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import redis

FIXTURES = Path(__file__).parent / "fixtures" / "mails"
ORDERED_AT = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def shop(app, make):
    """Two stores selling one tea pack: 楽天 (where the sales happen) and Yahoo."""
    make.application(malls=("rakuten", "yahoo"))
    rakuten = make.store("rakuten", order_mail_address="order-1-aa@orders.tatenpo.local")
    yahoo = make.store("yahoo")
    tea = make.product(code="TEA-20X3", on_hand=10)
    mug = make.product(code="MUG-BL-M", on_hand=5)
    on_rakuten = make.listing(rakuten, tea, item_code="tea-bag-20x3", variant_code="tb20-3", mall_quantity=10,
                              attributes={"item_number": "KG-TEA-3"})
    on_yahoo = make.listing(yahoo, tea, item_code="tea-bag-20x3", mall_quantity=10)
    mug_on_rakuten = make.listing(rakuten, mug, item_code="yunomi-01", variant_code="yn01-bl-m",
                                  attributes={"choices": ["ブルー", "M"]})
    return type("Shop", (), dict(rakuten=rakuten, yahoo=yahoo, tea=tea, mug=mug, on_rakuten=on_rakuten,
                                 on_yahoo=on_yahoo, mug_on_rakuten=mug_on_rakuten))


def rakuten_mail(number: str, *items: dict, to: str = "order-1-aa@orders.tatenpo.local") -> bytes:
    lines = [{"code": "tea-bag-20x3", "variant": "tb20-3", "item_number": "KG-TEA-3", "sku": "",
              "title": "有機栽培 緑茶 ティーバッグ 20包 ×3袋セット", "choices": [], "quantity": 2, "price": 2980, **item}
             for item in (items or ({},))]
    return compose("rakuten", shop_name="テスト茶舗", to=to, order_number=number, ordered_at=ORDERED_AT, items=lines)


def deliver(raw: bytes, store_id: int):
    """What a door does, then what the worker does: keep the mail, read it."""
    store = db.session.get(Store, store_id)
    mail = intake.receive(raw, store, recipient=store.order_mail_address or "x@y", via="smtp")
    return reading.read(mail.id)


def product(product_id: int) -> Product:
    return db.session.get(Product, product_id, populate_existing=True)


def test_an_order_mail_allocates_its_lines_and_keeps_the_order_with_the_raw_mail(app, shop):
    with app.app_context():
        outcome = deliver(rakuten_mail("300001-20261130-0000000001"), shop.rakuten.id)

        assert outcome.status == "order" and not outcome.duplicate
        order = db.session.scalar(select(Order))
        assert (order.number, order.status, order.sources) == ("300001-20261130-0000000001", "received", ["mail"])
        assert [(line.listing_id, line.quantity, line.stock) for line in order.lines] == [
            (shop.on_rakuten.id, 2, LineStock.ALLOCATED.value)]
        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated, tea.sellable) == (10, 2, 8)
        history = db.session.scalar(select(StockHistory).where(StockHistory.order_id == order.id))
        assert (history.kind, history.change, history.allocated_change, history.note) == (
            StockChangeKind.ORDER, 0, 2, order.number)
        mail = db.session.scalar(select(InboundMail))
        assert mail.order_id == order.id and mail.status == MailStatus.ORDER.value and mail.via == "smtp"


def test_every_store_of_a_sold_product_is_scheduled_and_pushed_at_once_without_immediate_sync(app, shop):
    with app.app_context():
        deliver(rakuten_mail("300001-20261130-0000000002"), shop.rakuten.id)

        targets = dict(db.session.execute(select(SyncEntry.listing_id, SyncEntry.target_quantity)).all())
        assert targets == {shop.on_rakuten.id: 8, shop.on_yahoo.id: 8}
        queued = Queue("sync", connection=redis()).jobs
        assert sorted(job.args[0] for job in queued if job.func_name == "tatenpo.jobs.push_store") == sorted(
            [shop.rakuten.id, shop.yahoo.id])


def test_the_same_order_twice_and_a_forwarded_copy_move_stock_once(app, shop):
    with app.app_context():
        first = deliver(rakuten_mail("300001-20261130-0000000003"), shop.rakuten.id)
        again = deliver(rakuten_mail("300001-20261130-0000000003"), shop.rakuten.id)

        assert (first.duplicate, again.duplicate) == (False, True)
        assert db.session.scalar(select(db.func.count()).select_from(Order)) == 1
        assert product(shop.tea.id).allocated == 2
        assert db.session.scalar(select(db.func.count()).select_from(InboundMail)) == 2


def test_a_copy_the_shop_forwarded_by_hand_is_the_same_order_as_the_original(app, shop):
    original = rakuten_mail("300001-20261130-0000000013")
    forwarded = EmailMessage()
    forwarded["From"] = "staff@tea-shop.example"
    forwarded["To"] = "order-1-aa@orders.tatenpo.local"
    forwarded["Subject"] = "Fwd: 【楽天市場】注文内容ご確認（自動配信メール）"
    forwarded.set_content("転送します。")
    forwarded.add_attachment(message_from_bytes(original))
    with app.app_context():
        first = deliver(original, shop.rakuten.id)
        copy = deliver(forwarded.as_bytes(), shop.rakuten.id)

        assert (first.order_number, copy.order_number, copy.duplicate) == (
            "300001-20261130-0000000013", "300001-20261130-0000000013", True)
        assert product(shop.tea.id).allocated == 2


def test_an_older_mail_naming_only_the_choices_finds_its_sku(app, shop):
    with app.app_context():
        outcome = deliver(rakuten_mail("300001-20261130-0000000004", {
            "code": "yunomi-01", "variant": "", "item_number": "", "title": "湯呑み",
            "choices": [("カラー", "ブルー"), ("サイズ", "M")], "quantity": 1, "price": 1650}), shop.rakuten.id)

        assert outcome.lines[0]["matched"] is True
        assert product(shop.mug.id).allocated == 1


def test_a_line_matching_no_listing_waits_unlinked_and_linking_it_allocates_then(app, shop, make):
    with app.app_context():
        deliver(rakuten_mail("300001-20261130-0000000005", {"code": "gift-box", "variant": "gb-1",
                                                             "item_number": "GIFT-BOX", "quantity": 1}), shop.rakuten.id)
        line = db.session.scalar(select(Order)).lines[0]
        assert (line.listing_id, line.stock) == (None, LineStock.NONE.value)
    gift = make.product(code="GIFT-BOX", on_hand=3)
    listing = make.listing(shop.rakuten, gift, item_code="gift-box", variant_code="gb-1")
    with app.app_context():
        line = db.session.scalar(select(Order)).lines[0]
        book.link_line(line, db.session.get(Listing, listing.id))
        db.session.commit()

        assert line.stock == LineStock.ALLOCATED.value
        assert product(gift.id).allocated == 1


def test_a_sale_beyond_the_stock_is_kept_shows_negative_sellable_and_pushes_zero(app, shop):
    with app.app_context():
        deliver(rakuten_mail("300001-20261130-0000000006", {"quantity": 12}), shop.rakuten.id)

        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated, tea.sellable) == (10, 12, -2)
        targets = set(db.session.scalars(select(SyncEntry.target_quantity)))
        assert targets == {0}


def test_shipping_takes_the_units_out_of_stock_and_allocation_once(app, shop):
    with app.app_context():
        deliver(rakuten_mail("300001-20261130-0000000007"), shop.rakuten.id)
        order = db.session.scalar(select(Order))
        book.ship(order)
        db.session.commit()
        with pytest.raises(book.OrderError):
            book.ship(order)

        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated, order.status) == (8, 0, OrderStatus.SHIPPED.value)


@pytest.mark.parametrize("restock, on_hand", [(False, 8), (True, 10)])
def test_cancelling_after_shipping_restocks_only_when_the_shop_says_so(app, shop, restock, on_hand):
    with app.app_context():
        deliver(rakuten_mail("300001-20261130-0000000008"), shop.rakuten.id)
        order = db.session.scalar(select(Order))
        book.ship(order)
        book.cancel(order, restock=restock)
        db.session.commit()

        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated) == (on_hand, 0)


def test_cancelling_before_shipping_gives_the_allocation_back(app, shop):
    with app.app_context():
        deliver(rakuten_mail("300001-20261130-0000000009"), shop.rakuten.id)
        order = db.session.scalar(select(Order))
        book.cancel(order)
        db.session.commit()
        with pytest.raises(book.OrderError):
            book.cancel(order)

        tea = product(shop.tea.id)
        assert (tea.on_hand, tea.allocated, tea.sellable) == (10, 0, 10)
        kinds = list(db.session.scalars(select(StockHistory.kind).where(StockHistory.order_id == order.id)
                                        .order_by(StockHistory.id)))
        assert kinds == [StockChangeKind.ORDER, StockChangeKind.CANCELLATION]


def test_a_cancellation_notice_is_kept_as_ignored_and_moves_nothing(app, shop):
    raw = (FIXTURES / "rakuten-cancellation.eml").read_bytes()
    with app.app_context():
        outcome = deliver(raw, shop.rakuten.id)

        assert outcome.status == "ignored" and outcome.reason.startswith("rakuten-cancellation")
        assert db.session.scalar(select(db.func.count()).select_from(Order)) == 0
        assert product(shop.tea.id).allocated == 0


def test_a_mail_that_fails_to_parse_is_kept_failed_and_read_again_by_reparse(app, shop):
    broken = (FIXTURES / "rakuten-broken-no-order-number.eml").read_bytes()
    with app.app_context():
        outcome = deliver(broken, shop.rakuten.id)
        assert outcome.status == "failed" and outcome.reason
        mail = db.session.scalar(select(InboundMail))
        # The "fix": the mail's content is now readable (as after a parser fix, the stored raw is read again).
        mail.raw = rakuten_mail("300001-20261130-0000000010")
        db.session.commit()

        assert reading.read_all(reading.failed_ids(), again=True)[0].status == "order"
        assert product(shop.tea.id).allocated == 2


def test_the_worker_job_reads_a_mail_the_door_stored(app, shop):
    with app.app_context():
        store = db.session.get(Store, shop.rakuten.id)
        mail = intake.receive(rakuten_mail("300001-20261130-0000000011"), store,
                              recipient=store.order_mail_address, via="http")
        queued = Queue("sync", connection=redis()).jobs
        assert [(job.func_name, job.args) for job in queued] == [("tatenpo.jobs.read_order_mail", (mail.id,))]

        assert jobs.read_order_mail(mail.id)["status"] == "order"
        assert db.session.get(Store, shop.rakuten.id).last_order_mail_at is not None


def test_the_sweep_reads_a_stored_mail_whose_job_was_lost(app, shop):
    with app.app_context():
        store = db.session.get(Store, shop.rakuten.id)
        mail = intake.receive(rakuten_mail("300001-20261130-0000000012"), store,
                              recipient=store.order_mail_address, via="smtp")
        redis().flushdb()  # Redis lost the job
        mail.received_at = mail.received_at.replace(year=2025)
        db.session.commit()

        assert jobs.sweep()["mails"] == [mail.id]


def test_a_mail_over_the_size_limit_is_refused_and_nothing_is_kept(app, shop):
    app.config["ORDER_MAIL_MAX_BYTES"] = 1000
    with app.app_context():
        store = db.session.get(Store, shop.rakuten.id)
        with pytest.raises(intake.MailTooLarge):
            intake.receive(b"x" * 1001, store, recipient=store.order_mail_address, via="smtp")
        assert db.session.scalar(select(db.func.count()).select_from(InboundMail)) == 0
