"""受注 on the screens, through real HTTP, the real database and Redis: the list and its filters, one order with
its mails (escaped) and moves (出荷, キャンセル, 再入庫, 紐付け) that change stock exactly once, the received
mails with 再読込, the top page's 受注 sections, and step 1 of the guide with the order-mail route."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from sandbox.order_mails import compose
from tatenpo.models import InboundMail, Listing, MailStatus, Order, Product, Store, utcnow
from tatenpo.orders import intake, reading
from tatenpo.platform import mail as outgoing
from tatenpo.platform.extensions import db

from .conftest import PASSWORD

FIXTURES = Path(__file__).parent / "fixtures" / "mails"
ORDERED_AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
RAKUTEN_ADDRESS = "order-1-aa@orders.tatenpo.local"
YAHOO_ADDRESS = "order-2-bb@orders.tatenpo.local"


@pytest.fixture
def shop(app, make):
    """楽天 and Yahoo stores with issued order-mail addresses, selling a tea pack (10 in stock)."""
    make.application(malls=("rakuten", "yahoo"))
    rakuten = make.store("rakuten", name="テスト茶舗 楽天店", order_mail_address=RAKUTEN_ADDRESS)
    yahoo = make.store("yahoo", name="テスト茶舗 Yahoo店", order_mail_address=YAHOO_ADDRESS)
    tea = make.product(code="TEA-20X3", name="緑茶 ティーバッグ", on_hand=10)
    on_rakuten = make.listing(rakuten, tea, item_code="tea-bag-20x3", variant_code="tb20-3", mall_quantity=10,
                              attributes={"item_number": "KG-TEA-3"})
    make.listing(yahoo, tea, item_code="tea-bag-20x3", mall_quantity=10)
    return type("Shop", (), dict(rakuten=rakuten, yahoo=yahoo, tea=tea, on_rakuten=on_rakuten))


@pytest.fixture
def staff(auth):
    auth.login()
    return auth


def rakuten_mail(number: str, quantity: int = 2, code: str = "tea-bag-20x3", variant: str = "tb20-3",
                 item_number: str = "KG-TEA-3") -> bytes:
    item = {"code": code, "variant": variant, "item_number": item_number, "sku": "", "title": "有機栽培 緑茶",
            "choices": [], "quantity": quantity, "price": 2980}
    return compose("rakuten", shop_name="テスト茶舗", to=RAKUTEN_ADDRESS, order_number=number, ordered_at=ORDERED_AT,
                   items=[item])


def deliver(app, raw: bytes, store_id: int):
    """What a door and then the worker do: keep the mail, read it."""
    with app.app_context():
        store = db.session.get(Store, store_id)
        mail = intake.receive(raw, store, recipient=store.order_mail_address, via="smtp")
        return reading.read(mail.id)


def order_id(app, number: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Order.id).where(Order.number == number))


def stock(app, product_id: int) -> tuple[int, int]:
    with app.app_context():
        product = db.session.get(Product, product_id)
        return product.on_hand, product.allocated


def text(response) -> str:
    return response.get_data(as_text=True)


# --- The list ---------------------------------------------------------------------------------------------

def test_the_list_shows_orders_with_their_lines_status_sources_and_the_unlinked_badge(app, shop, staff, client):
    deliver(app, rakuten_mail("300001-20261130-0000000101"), shop.rakuten.id)
    deliver(app, rakuten_mail("300001-20261130-0000000102", code="gift-box", variant="gb-1", item_number="GIFT"),
            shop.rakuten.id)

    page = text(client.get("/orders"))

    assert "受注" in page and "300001-20261130-0000000101" in page and "300001-20261130-0000000102" in page
    assert "KG-TEA-3/tb20-3 × 2" in page  # 楽天 prints the 商品番号
    assert "テスト茶舗 楽天店" in page and "メール" in page
    assert page.count('class="badge warn unlinked"') == 1
    assert 'href="/orders"' in text(client.get("/"))  # in the menu


def test_a_rare_order_number_finds_one_order_and_the_filters_narrow_the_list(app, shop, staff, client):
    deliver(app, rakuten_mail("300001-20261130-0000000201"), shop.rakuten.id)
    deliver(app, rakuten_mail("300001-20261130-0000000202", code="gift-box", variant="gb-1", item_number="GIFT"),
            shop.rakuten.id)
    shipped = order_id(app, "300001-20261130-0000000201")
    client.post(f"/orders/{shipped}/ship")

    found = text(client.get("/orders", query_string={"q": "0000000202"}))
    assert "300001-20261130-0000000202" in found and "300001-20261130-0000000201" not in found
    by_code = text(client.get("/orders", query_string={"q": "ｇｂ－１"}))  # full-width finds it too
    assert "300001-20261130-0000000202" in by_code and "300001-20261130-0000000201" not in by_code
    only_shipped = text(client.get("/orders", query_string={"status": "shipped"}))
    assert "300001-20261130-0000000201" in only_shipped and "300001-20261130-0000000202" not in only_shipped
    unlinked = text(client.get("/orders", query_string={"unlinked": "1"}))
    assert "300001-20261130-0000000202" in unlinked and "300001-20261130-0000000201" not in unlinked
    other_store = text(client.get("/orders", query_string={"store": shop.yahoo.id}))
    assert "300001-20261130-00000002" not in other_store
    today = datetime.now(UTC).date()
    in_range = text(client.get("/orders", query_string={"since": (today - timedelta(days=1)).isoformat(),
                                                         "until": (today + timedelta(days=1)).isoformat()}))
    assert "300001-20261130-0000000201" in in_range
    before = text(client.get("/orders", query_string={"until": (today - timedelta(days=2)).isoformat()}))
    assert "300001-20261130-00000002" not in before


def test_the_list_answers_htmx_with_the_table_alone_and_varies_on_it(app, shop, staff, client):
    deliver(app, rakuten_mail("300001-20261130-0000000301"), shop.rakuten.id)

    response = client.get("/orders", query_string={"q": "0000000301"},
                          headers={"HX-Request": "true", "HX-Target": "order-table"})

    assert "HX-Request" in response.headers["Vary"]
    assert "<html" not in text(response)
    assert 'id="order-table"' in text(response) and "300001-20261130-0000000301" in text(response)


def test_a_bad_date_filter_is_dropped_with_a_message(app, shop, staff, client):
    page = text(client.get("/orders", query_string={"since": "yesterday"}, follow_redirects=True))
    assert "yesterday" in page and "YYYY-MM-DD" in page


def test_bulk_ship_ships_the_received_orders_once_and_counts_the_skipped(app, shop, staff, client):
    for number in ("300001-20261130-0000000401", "300001-20261130-0000000402", "300001-20261130-0000000403"):
        deliver(app, rakuten_mail(number, quantity=1), shop.rakuten.id)
    ids = [order_id(app, n) for n in ("300001-20261130-0000000401", "300001-20261130-0000000402",
                                      "300001-20261130-0000000403")]
    client.post(f"/orders/{ids[0]}/ship")
    assert stock(app, shop.tea.id) == (9, 2)

    page = text(client.post("/orders/ship", data={"ids": [str(i) for i in ids]}, follow_redirects=True))

    assert stock(app, shop.tea.id) == (7, 0)
    assert "2件の受注を出荷済みにしました" in page
    assert "1件はスキップしました" in page
    with app.app_context():
        assert set(db.session.scalars(select(Order.status))) == {"shipped"}


def test_bulk_ship_without_a_selection_says_so(app, shop, staff, client):
    page = text(client.post("/orders/ship", data={}, follow_redirects=True))
    assert "出荷済みにする受注を選んでください" in page


# --- One order --------------------------------------------------------------------------------------------

def test_the_detail_shows_what_the_mall_printed_the_product_and_the_mail_escaped(app, shop, staff, client):
    original = rakuten_mail("300001-20261130-0000000501")
    forwarded = EmailMessage()
    forwarded["From"] = "staff@tea-shop.example"
    forwarded["To"] = RAKUTEN_ADDRESS
    forwarded["Subject"] = "Fwd: <script>alert('x')</script> 注文"
    forwarded.set_content("転送します。")
    forwarded.add_attachment(message_from_bytes(original))
    deliver(app, original, shop.rakuten.id)
    outcome = deliver(app, forwarded.as_bytes(), shop.rakuten.id)
    assert outcome.duplicate is True
    order = order_id(app, "300001-20261130-0000000501")

    page = text(client.get(f"/orders/{order}"))

    assert "KG-TEA-3" in page and "tb20-3" in page and "有機栽培 緑茶" in page and "2,980" in page
    assert f'href="/products/{shop.tea.id}"' in page and "TEA-20X3" in page
    assert "引当済み" in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "order@rakuten.co.jp" in page and "staff@tea-shop.example" in page
    assert "受注" in page  # the 在庫履歴 row of the allocation


def test_the_raw_mail_is_a_plain_text_download_byte_for_byte(app, shop, staff, client):
    raw = rakuten_mail("300001-20261130-0000000502")
    deliver(app, raw, shop.rakuten.id)
    with app.app_context():
        mail_id = db.session.scalar(select(InboundMail.id))

    response = client.get(f"/orders/mails/{mail_id}/raw")

    assert response.data == raw
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_ship_moves_stock_once_and_a_second_ship_is_refused_and_changes_nothing(app, shop, staff, client):
    deliver(app, rakuten_mail("300001-20261130-0000000601"), shop.rakuten.id)
    order = order_id(app, "300001-20261130-0000000601")
    assert stock(app, shop.tea.id) == (10, 2)

    page = text(client.post(f"/orders/{order}/ship", follow_redirects=True))
    assert "出荷済みにしました" in page
    assert stock(app, shop.tea.id) == (8, 0)

    again = text(client.post(f"/orders/{order}/ship", follow_redirects=True))
    assert "受注の状態の注文だけを出荷済みにできます" in again
    assert stock(app, shop.tea.id) == (8, 0)


@pytest.mark.parametrize("restock, on_hand", [(False, 8), (True, 10)])
def test_cancelling_a_shipped_order_restocks_only_when_ticked(app, shop, staff, client, restock, on_hand):
    deliver(app, rakuten_mail("300001-20261130-0000000701"), shop.rakuten.id)
    order = order_id(app, "300001-20261130-0000000701")
    client.post(f"/orders/{order}/ship")
    assert "再入庫" in text(client.get(f"/orders/{order}"))

    client.post(f"/orders/{order}/cancel", data={"restock": "1"} if restock else {})

    assert stock(app, shop.tea.id) == (on_hand, 0)
    again = text(client.post(f"/orders/{order}/cancel", data={"restock": "1"}, follow_redirects=True))
    assert "すでにキャンセル" in again
    assert stock(app, shop.tea.id) == (on_hand, 0)


def test_cancelling_a_received_order_releases_its_allocation(app, shop, staff, client):
    deliver(app, rakuten_mail("300001-20261130-0000000702"), shop.rakuten.id)
    order = order_id(app, "300001-20261130-0000000702")

    page = text(client.post(f"/orders/{order}/cancel", follow_redirects=True))

    assert "キャンセルしました" in page
    assert stock(app, shop.tea.id) == (10, 0)


def test_an_unlinked_line_is_found_by_code_and_linking_it_allocates(app, shop, staff, client, make):
    deliver(app, rakuten_mail("300001-20261130-0000000801", quantity=1, code="gift-box", variant="gb-1",
                              item_number="GIFT-BOX"), shop.rakuten.id)
    gift = make.product(code="GIFT-BOX", on_hand=3)
    listing = make.listing(shop.rakuten, gift, item_code="gift-box-2026", code="GIFT-BOX-2026")
    make.listing(shop.yahoo, gift, item_code="gift-box-yahoo", code="GIFT-BOX-Y")
    order = order_id(app, "300001-20261130-0000000801")
    with app.app_context():
        line_id = db.session.scalar(select(Order).where(Order.id == order)).lines[0].id
    assert "未紐付け" in text(client.get(f"/orders/{order}"))

    found = client.get(f"/orders/{order}/lines/{line_id}/candidates", query_string={"q": "gift-box"},
                       headers={"HX-Request": "true"})
    assert "GIFT-BOX-2026" in text(found) and "GIFT-BOX-Y" not in text(found)  # only the order's store
    assert "HX-Request" in found.headers["Vary"]
    page = text(client.post(f"/orders/{order}/lines/{line_id}/link", data={"listing_id": listing.id},
                            follow_redirects=True))

    assert "GIFT-BOX-2026 に紐付けました" in page
    assert stock(app, gift.id) == (3, 1)
    refused = text(client.post(f"/orders/{order}/lines/{line_id}/link", data={"listing_id": listing.id},
                               follow_redirects=True))
    assert "すでに紐付け" in refused
    assert stock(app, gift.id) == (3, 1)


def test_the_listing_search_works_without_htmx_too(app, shop, staff, client, make):
    deliver(app, rakuten_mail("300001-20261130-0000000802", quantity=1, code="gift-box", variant="gb-1",
                              item_number="GIFT-BOX"), shop.rakuten.id)
    gift = make.product(code="GIFT-BOX", on_hand=3)
    make.listing(shop.rakuten, gift, item_code="gift-box-2026", code="GIFT-BOX-2026")
    order = order_id(app, "300001-20261130-0000000802")
    with app.app_context():
        line_id = db.session.scalar(select(Order).where(Order.id == order)).lines[0].id

    page = text(client.get(f"/orders/{order}/lines/{line_id}/candidates", query_string={"q": "gift"},
                           follow_redirects=True))

    assert "受注番号 300001-20261130-0000000802" in page and "GIFT-BOX-2026" in page


def test_an_unknown_order_is_404(app, staff, client):
    assert client.get("/orders/999").status_code == 404
    assert client.post("/orders/999/ship").status_code == 404


# --- Received mails ---------------------------------------------------------------------------------------

def test_received_mails_show_their_status_and_a_failed_one_is_read_again(app, shop, staff, client):
    deliver(app, (FIXTURES / "rakuten-broken-no-order-number.eml").read_bytes(), shop.rakuten.id)
    deliver(app, (FIXTURES / "rakuten-cancellation.eml").read_bytes(), shop.rakuten.id)
    with app.app_context():
        failed = db.session.scalar(select(InboundMail).where(InboundMail.status == MailStatus.FAILED.value))
        failed_id = failed.id
        page = text(client.get("/orders/mails"))
        assert "取込失敗" in page and "注文ではない" in page and "rakuten-cancellation" in page
        only_failed = text(client.get("/orders/mails", query_string={"status": "failed"}))
        assert "rakuten-cancellation" not in only_failed and "再読込" in only_failed
        # The "fix": the stored mail can now be read (as after a parser fix).
        failed.raw = rakuten_mail("300001-20261130-0000000901")
        db.session.commit()

    page = text(client.post(f"/orders/mails/{failed_id}/reread", follow_redirects=True))

    assert "300001-20261130-0000000901" in page
    assert stock(app, shop.tea.id) == (10, 2)
    again = text(client.post(f"/orders/mails/{failed_id}/reread", follow_redirects=True))
    assert "取込に失敗したメールだけ" in again
    assert stock(app, shop.tea.id) == (10, 2)


# --- The top page -----------------------------------------------------------------------------------------

def test_the_top_page_shows_oversold_with_its_order_and_the_unlinked_and_failed_counts(app, shop, staff, client):
    deliver(app, rakuten_mail("300001-20261130-0000001001", quantity=12), shop.rakuten.id)
    deliver(app, rakuten_mail("300001-20261130-0000001002", quantity=1, code="gift-box", variant="gb-1",
                              item_number="GIFT"), shop.rakuten.id)
    deliver(app, (FIXTURES / "rakuten-broken-no-order-number.eml").read_bytes(), shop.rakuten.id)
    oversold = order_id(app, "300001-20261130-0000001001")

    page = text(client.get("/"))

    section = page[page.index('id="oversold-heading"'):page.index('id="decreases-heading"')]
    assert "TEA-20X3" in section and "-2" in section
    assert f'href="/orders/{oversold}"' in section and "300001-20261130-0000001001" in section
    assert re.search(r'id="unlinked-lines"><a href="/orders\?unlinked=1">1</a>', page)
    assert re.search(r'id="failed-mails"><a href="/orders/mails\?status=failed">1</a>', page)


@pytest.mark.parametrize("choice, on_hand", [("adopt", 8), ("overwrite", 10)])
def test_an_unexplained_decrease_is_shown_and_each_button_resolves_it(app, shop, staff, client, make, choice,
                                                                      on_hand):
    flagged = make.listing(shop.yahoo, shop.tea, item_code="tea-yahoo-2", code="TEA-Y2", mall_expected=10,
                           unexplained_decrease=2)
    page = text(client.get("/"))
    assert f'id="decrease-{flagged.id}"' in page and "−2" in page

    result = text(client.post(f"/decreases/{flagged.id}", data={"choice": choice}, follow_redirects=True))

    assert f'id="decrease-{flagged.id}"' not in result
    assert stock(app, shop.tea.id) == (on_hand, 0)
    with app.app_context():
        assert db.session.get(Listing, flagged.id).unexplained_decrease is None
    again = text(client.post(f"/decreases/{flagged.id}", data={"choice": choice}, follow_redirects=True))
    assert "説明のない減少はありません" in again
    assert stock(app, shop.tea.id) == (on_hand, 0)


def test_a_selling_store_without_an_order_mail_for_days_is_warned(app, shop, staff, client):
    deliver(app, rakuten_mail("300001-20261130-0000001101"), shop.rakuten.id)
    assert "注文メールが届いていません" not in text(client.get("/"))
    with app.app_context():
        db.session.get(Store, shop.rakuten.id).last_order_mail_at = utcnow() - timedelta(days=4)
        db.session.commit()

    page = text(client.get("/"))

    assert "注文メールが届いていません（モールの送信設定を確認してください）" in page
    warning = page[page.index("mail-silence"):]
    assert "テスト茶舗 楽天店" in warning[:300]
    assert "テスト茶舗 Yahoo店" not in page[page.index("mail-silence"):page.index('id="orders-heading"')]


# --- The guide's step 1 -----------------------------------------------------------------------------------

def test_step_1_shows_each_stores_address_and_where_the_mall_takes_it(app, shop, staff, client):
    rakuten = text(client.get("/guide", query_string={"store": shop.rakuten.id}))
    yahoo = text(client.get("/guide", query_string={"store": shop.yahoo.id}))

    assert RAKUTEN_ADDRESS in rakuten and "注文確認メール送り先メールアドレス" in rakuten
    assert YAHOO_ADDRESS in yahoo and "ストアクリエイターPro › 設定 › 通知設定" in yahoo
    assert "✓ 確認済み" not in rakuten


def test_a_test_mail_goes_to_the_address_and_only_a_mall_mail_confirms_the_route(app, shop, staff, client):
    page = text(client.post(f"/guide/stores/{shop.rakuten.id}/test-mail", follow_redirects=True))
    assert RAKUTEN_ADDRESS in page
    with app.app_context():
        sent = next(m for m in outgoing.outbox() if m.to == RAKUTEN_ADDRESS)
        raw = (outgoing.outbox_folder() / sent.name).read_bytes()

    came_back = deliver(app, raw, shop.rakuten.id)
    assert (came_back.status, came_back.reason.split(":")[0]) == ("ignored", "unknown-sender")
    assert "✓ 確認済み" not in text(client.get("/guide", query_string={"store": shop.rakuten.id}))

    deliver(app, rakuten_mail("300001-20261130-0000001201"), shop.rakuten.id)

    assert "✓ 確認済み" in text(client.get("/guide", query_string={"store": shop.rakuten.id}))
    assert "✓ 確認済み" not in text(client.get("/guide", query_string={"store": shop.yahoo.id}))


# --- Who may do what --------------------------------------------------------------------------------------

def test_every_order_post_needs_the_csrf_token(app, shop, make, client):
    deliver(app, rakuten_mail("300001-20261130-0000001301"), shop.rakuten.id)
    order = order_id(app, "300001-20261130-0000001301")
    make.user(email="staff@example.jp")
    client.post("/login", data={"email": "staff@example.jp", "password": PASSWORD})
    app.config["WTF_CSRF_ENABLED"] = True

    refused = [client.post(path, data=data).status_code for path, data in [
        (f"/orders/{order}/ship", {}), (f"/orders/{order}/cancel", {}), ("/orders/ship", {"ids": [str(order)]}),
        (f"/decreases/{shop.on_rakuten.id}", {"choice": "overwrite"}),
        (f"/guide/stores/{shop.rakuten.id}/test-mail", {}), ("/orders/mails/1/reread", {}),
    ]]

    assert refused == [400] * 6
    assert stock(app, shop.tea.id) == (10, 2)
    page = text(client.get(f"/orders/{order}"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post(f"/orders/{order}/ship", data={"csrf_token": token})
    assert stock(app, shop.tea.id) == (8, 0)


def test_the_order_pages_speak_english_to_an_english_user(app, shop, make, client):
    deliver(app, rakuten_mail("300001-20261130-0000001401"), shop.rakuten.id)
    order = order_id(app, "300001-20261130-0000001401")
    make.user(email="en@example.jp", locale="en")
    client.post("/login", data={"email": "en@example.jp", "password": PASSWORD})

    listing = text(client.get("/orders"))
    detail = text(client.get(f"/orders/{order}"))
    mails = text(client.get("/orders/mails"))

    assert ">Orders<" in listing and "Mark shipped" in listing and "Received" in listing
    assert "受注番号" in listing  # the mall's own word, in every language
    assert "Cancel the order" in detail and "Mails this order came in" in detail and "Allocated" in detail
    assert "Received mails" in mails and "Order" in mails
