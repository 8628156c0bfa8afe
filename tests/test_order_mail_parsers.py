"""Order mails: each mall's real order mail becomes its order (number, time in UTC, lines with code, variant,
choices, quantity and price), every other mail becomes the reason it is not an order, and the sandbox's
composed mails read back as the orders they were made from. Pure unit tests: no app, database or Redis."""
from __future__ import annotations

import base64
import re
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, compat32
from pathlib import Path

import pytest

from sandbox.order_mails import JST, compose, compose_cancellation, iso2022jp, order_number
from tatenpo.orders.mail import MALLS, MailLine, MailOrder, MailParseError, NotAnOrder, parse_order_mail, read_mail

FIXTURES = Path(__file__).parent / "fixtures" / "mails"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def jis_mail(sender: str, subject: str, body: str, date: str = "Fri, 14 Mar 2025 10:23:50 +0900") -> bytes:
    """A minimal ISO-2022-JP 7bit mail, as 楽天 and Yahoo send."""
    head = (f"From: {sender}\r\nTo: orders@mail.tatenpo.test\r\nSubject: =?ISO-2022-JP?B?"
            f"{base64.b64encode(iso2022jp(subject)).decode()}?=\r\nDate: {date}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit")
    return head.encode() + b"\r\n\r\n" + b"\r\n".join(iso2022jp(line) for line in body.split("\n")) + b"\r\n"


def utf8_mail(sender: str, subject: str, text: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = "orders@mail.tatenpo.test"
    message["Subject"] = subject
    message["Date"] = "Fri, 14 Mar 2025 10:23:50 +0900"
    message.set_content(text, charset="utf-8")
    return message.as_bytes()


# --- 楽天市場 ----------------------------------------------------------------------------------------------

def test_a_rakuten_order_in_iso_2022_jp_gives_its_number_time_and_lines():
    order = parse_order_mail(fixture("rakuten-order-iso2022jp.eml"), "rakuten")

    assert order == MailOrder(
        mall="rakuten",
        number="123456-20250314-0123456789",
        ordered_at=datetime(2025, 3, 14, 1, 23, 45),  # [日時] 2025-03-14 10:23:45 JST
        lines=(
            MailLine(item_code="tea-bag-20x3", variant_code="tb20-3", choices=(("容量", "2g×20包"), ("のし", "なし")),
                     title="【送料無料】有機栽培 緑茶 ティーバッグ 20包 ×3袋セット (静岡県産)", quantity=2, unit_price=2980),
            MailLine(item_code="yunomi-01", variant_code="yn01-bl-m", choices=(("カラー", "ブルー"), ("サイズ", "M")),
                     title="湯呑み ①番窯", quantity=1, unit_price=1650),
        ),
    )


def test_rakuten_takes_the_code_from_the_last_parentheses_and_quantities_only_from_the_price_line():
    first, second = parse_order_mail(fixture("rakuten-order-iso2022jp.eml"), "rakuten").lines

    assert first.title.endswith("(静岡県産)") and first.item_code == "tea-bag-20x3"
    # '20包', '×3袋セット' and the choice '2g×20包' are numbers in text, not quantities.
    assert (first.quantity, second.quantity) == (2, 1)


def test_an_older_rakuten_mail_with_only_choice_lines_leaves_the_variant_empty():
    order = parse_order_mail(fixture("rakuten-order-older-layout.eml"), "rakuten")

    assert order.number == "234567-20190805-00123456"
    assert order.ordered_at == datetime(2019, 8, 5, 12, 4, 9)
    assert [(line.item_code, line.variant_code, line.choices, line.quantity, line.unit_price)
            for line in order.lines] == [
        ("tenugui-10", "", (("カラー", "藍"),), 3, 1100),
        ("hashi-5", "", (), 1, 1210),
        ("furoshiki-l", "", (("柄", "青海波"), ("サイズ", "大")), 2, 1550),
    ]
    assert order.lines[2].title == "風呂敷 (大)"


def test_a_shift_jis_labelled_rakuten_mail_is_read_as_cp932_with_its_subject_cut_inside_a_character():
    envelope = read_mail(fixture("rakuten-order-cp932.eml"))
    order = parse_order_mail(fixture("rakuten-order-cp932.eml"), "rakuten")

    assert envelope.subject == "【楽天市場】注文内容ご確認（自動配信メール）"
    assert order.lines == (MailLine(item_code="matcha-30", variant_code="m30", choices=(),
                                    title="㈱髙橋製茶 抹茶 ～宇治～ 30g ①", quantity=1, unit_price=3240),)
    assert order.ordered_at == datetime(2025, 3, 31, 15, 5)  # 2025-04-01 00:05 in Japan is still March in UTC


@pytest.mark.parametrize("name, number, ordered_at", [
    ("rakuten-order-forwarded-gmail.eml", "123456-20250315-0123450001", datetime(2025, 3, 15, 0, 11, 58)),
    ("rakuten-order-forwarded-outlook.eml", "123456-20250316-0123450002", datetime(2025, 3, 16, 11, 0, 31)),
    ("rakuten-order-forwarded-quoted.eml", "123456-20250317-0123450003", datetime(2025, 3, 16, 22, 45, 10)),
])
def test_a_hand_forwarded_rakuten_copy_is_judged_by_the_original_sender_and_subject_it_quotes(name, number,
                                                                                               ordered_at):
    envelope = read_mail(fixture(name))
    order = parse_order_mail(fixture(name), "rakuten")

    assert envelope.forwarded
    assert envelope.sender == "order@rakuten.co.jp"
    assert envelope.subject == "【楽天市場】注文内容ご確認（自動配信メール）"
    assert (order.number, order.ordered_at, len(order.lines)) == (number, ordered_at, 1)


def test_the_quoted_date_of_a_forwarded_copy_is_read_as_japan_time():
    assert read_mail(fixture("rakuten-order-forwarded-gmail.eml")).date == datetime(2025, 3, 15, 0, 12)
    assert read_mail(fixture("rakuten-order-forwarded-outlook.eml")).date == datetime(2025, 3, 16, 11, 1)


def test_a_forwarded_copy_without_quoted_headers_is_judged_by_its_forwarder():
    body = "\n".join(["[受注番号] 123456-20250314-0123456789", "[商品]", "緑茶 (tea-01)",
                      "価格 1,000(円) x 1(個) = 1,000(円)", "*****"])
    raw = utf8_mail("shop-owner@example.jp", "Fwd: 【楽天市場】注文内容ご確認（自動配信メール）", body)

    result = parse_order_mail(raw, "rakuten")

    assert read_mail(raw).forwarded
    assert isinstance(result, NotAnOrder) and result.reason == "unknown-sender"


def test_a_rakuten_cancellation_notice_is_not_an_order_although_it_carries_an_order_number():
    result = parse_order_mail(fixture("rakuten-cancellation.eml"), "rakuten")

    assert isinstance(result, NotAnOrder)
    assert result.reason == "rakuten-cancellation"
    assert "order@rakuten.co.jp" in result.detail


def test_an_order_like_mail_from_an_unknown_sender_is_not_an_order():
    result = parse_order_mail(fixture("rakuten-unknown-sender.eml"), "rakuten")

    assert result.reason == "unknown-sender"
    assert "order@rakuten-ichiba-secure.example" in result.detail


def test_a_rakuten_order_mail_without_its_order_number_is_a_parse_error():
    with pytest.raises(MailParseError, match=r"\[受注番号\]"):
        parse_order_mail(fixture("rakuten-broken-no-order-number.eml"), "rakuten")


def test_a_rakuten_item_without_its_price_line_is_a_parse_error():
    body = "\n".join(["[受注番号] 123456-20250314-0123456789", "[商品]", "緑茶 (tea-01)", "カラー:緑", "*****"])
    raw = jis_mail("order@rakuten.co.jp", "【楽天市場】注文内容ご確認（自動配信メール）", body)

    with pytest.raises(MailParseError, match="価格"):
        parse_order_mail(raw, "rakuten")


def test_full_width_colons_and_digits_in_rakuten_labels_and_prices_are_read():
    body = "\n".join(["［受注番号］ １２３４５６-２０２５０３１４-０１２３４５６７８９", "［日時］ ２０２５-０３-１４ １０：２３：４５",
                      "[商品]", "緑茶 ２０包 (tea-01)", "SKU管理番号：v-1", "価格 １，２００(円) x ３(個) = ３，６００(円)", "*****"])
    raw = jis_mail("order@rakuten.co.jp", "【楽天市場】注文内容ご確認（自動配信メール）", body)

    order = parse_order_mail(raw, "rakuten")

    assert order.number == "123456-20250314-0123456789"
    assert order.ordered_at == datetime(2025, 3, 14, 1, 23, 45)
    assert order.lines == (MailLine("tea-01", "v-1", (), "緑茶 ２０包", 3, 1200),)


# --- Yahoo!ショッピング -----------------------------------------------------------------------------------

def test_a_yahoo_order_gives_its_store_order_id_time_and_code_and_sub_code_lines():
    order = parse_order_mail(fixture("yahoo-order-iso2022jp.eml"), "yahoo")

    assert order == MailOrder(
        mall="yahoo",
        number="sakura-tea-10000123",
        ordered_at=datetime(2025, 3, 14, 13, 5, 9),  # 注文日時：2025年03月14日 22時05分09秒
        lines=(
            MailLine(item_code="sencha-100", variant_code="sencha-100-2p", choices=(("内容量", "100g×2袋"),),
                     title="【公式】煎茶 深蒸し 100g ×2袋", quantity=3, unit_price=1980),
            MailLine(item_code="chakoshi", variant_code="", choices=(), title="茶こし ステンレス", quantity=1,
                     unit_price=880),
        ),
    )


def test_a_yahoo_daily_report_is_not_an_order():
    result = parse_order_mail(fixture("yahoo-daily-report.eml"), "yahoo")

    assert isinstance(result, NotAnOrder) and result.reason == "daily-report"


def test_full_width_digits_in_a_yahoo_price_line_are_read():
    body = "\n".join(["注文ID　：store-10000001", "注文日時：２０２５年０３月１４日 １０時２３分４５秒", "￣￣￣￣￣",
                      "（１）緑茶 ×３袋セット", "tea-01/tea-01-3", "２，２００円×２＝４，４００円", "====="])
    raw = jis_mail("store-shopping-order-master@mail.yahoo.co.jp", "【Yahoo!ショッピング】注文確認：テスト店", body)

    order = parse_order_mail(raw, "yahoo")

    assert order.ordered_at == datetime(2025, 3, 14, 1, 23, 45)
    assert order.lines == (MailLine("tea-01", "tea-01-3", (), "緑茶 ×３袋セット", 2, 2200),)


def test_a_yahoo_order_mail_without_its_item_list_is_a_parse_error():
    raw = jis_mail("store-shopping-order-master@mail.yahoo.co.jp", "【Yahoo!ショッピング】注文確認：テスト店",
                   "注文ID　：store-10000001\n注文日時：2025年03月14日 10時23分45秒\n")

    with pytest.raises(MailParseError, match="item list"):
        parse_order_mail(raw, "yahoo")


# --- Amazon.co.jp ----------------------------------------------------------------------------------------

def test_an_amazon_order_confirmed_mail_gives_sku_lines_with_unit_prices():
    order = parse_order_mail(fixture("amazon-order-confirmed.eml"), "amazon")

    assert order == MailOrder(
        mall="amazon",
        number="503-1234567-1234567",
        # 注文日 has no time: the mail's Date (15:40:12 JST the same day) gives it.
        ordered_at=datetime(2025, 3, 14, 6, 40, 12),
        lines=(
            MailLine(item_code="GT-20x3", variant_code="", choices=(), title="有機緑茶 ティーバッグ 20包 ×3袋セット",
                     quantity=2, unit_price=2980),
            MailLine(item_code="YN-01-BL", variant_code="", choices=(), title="湯呑み ① 青", quantity=1,
                     unit_price=1650),
        ),
    )


def test_the_older_amazon_ship_now_layout_with_half_width_colons_is_read_too():
    order = parse_order_mail(fixture("amazon-order-ship-now-older.eml"), "amazon")

    assert order.number == "249-7654321-7654321"
    assert order.ordered_at == datetime(2012, 11, 20, 14, 15)
    assert order.lines == (MailLine("MT-30", "", (), "抹茶 30g 缶入り 3缶セット", 3, 1200),)


def test_an_amazon_payout_notice_is_not_an_order():
    assert parse_order_mail(fixture("amazon-payout-notice.eml"), "amazon").reason == "payout-notice"


def test_an_amazon_buyer_message_quoting_an_order_number_is_a_contact_not_an_order():
    assert parse_order_mail(fixture("amazon-buyer-message.eml"), "amazon").reason == "contact-form"


# --- Shopify ---------------------------------------------------------------------------------------------

def test_a_shopify_staff_notification_from_the_stores_own_address_is_an_order():
    envelope = read_mail(fixture("shopify-order-en-text.eml"))
    order = parse_order_mail(fixture("shopify-order-en-text.eml"), "shopify")

    assert envelope.subject == "[Sakura Tea] Order #1042 placed by 山田 花子"  # raw 8-bit UTF-8 header
    assert order == MailOrder(
        mall="shopify",
        number="#1042",
        ordered_at=datetime(2025, 3, 14, 1, 23, 45),
        lines=(
            MailLine("GT-20x3", "", (), "Organic Green Tea 20 bags ×3", 2, None),
            MailLine("YN-01-BL", "", (), "Yunomi cup ① (blue)", 1, None),
        ),
    )


def test_a_japanese_html_only_shopify_notification_is_read_from_its_html():
    order = parse_order_mail(fixture("shopify-order-ja-html-only.eml"), "shopify")

    assert order.number == "#1043"
    assert order.ordered_at == datetime(2025, 3, 15, 3, 0)
    assert order.lines == (
        MailLine("GT-20x3", "", (("option1", "100g"), ("option2", "缶")), "有機緑茶 ティーバッグ 20包 ×3袋セット", 2, 2980),
        MailLine("YN-01-BL", "", (), "湯呑み ①", 1, 1650),
    )


def test_a_shopify_contact_form_message_is_not_an_order_even_with_order_like_lines():
    result = parse_order_mail(fixture("shopify-contact-form.eml"), "shopify")

    assert isinstance(result, NotAnOrder) and result.reason == "contact-form"


def test_a_shopify_like_subject_without_line_items_from_elsewhere_is_not_an_order():
    raw = utf8_mail("someone@example.com", "[Sakura Tea] Order #1099 placed by Taro", "Please ship quickly.")

    assert parse_order_mail(raw, "shopify").reason == "unknown-sender"


def test_a_shopify_order_notification_from_shopify_without_line_items_is_a_parse_error():
    raw = utf8_mail("Shopify <mailer@shopify.com>", "[Sakura Tea] Order #1099 placed by Taro", "Hello Sakura Tea,")

    with pytest.raises(MailParseError, match="#1099"):
        parse_order_mail(raw, "shopify")


def test_a_japanese_shopify_cancellation_subject_is_not_taken_for_an_order():
    raw = utf8_mail("Shopify <mailer@shopify.com>", "[さくら茶舗] 注文 #1043 がキャンセルされました",
                    "1x 緑茶    (sku: GT-1)")

    assert parse_order_mail(raw, "shopify").reason == "shopify-cancellation"


# --- Every mall ------------------------------------------------------------------------------------------

def test_another_malls_order_mail_sent_to_a_store_is_reported_as_the_wrong_mall():
    result = parse_order_mail(fixture("yahoo-order-iso2022jp.eml"), "rakuten")

    assert isinstance(result, NotAnOrder) and result.reason == "wrong-mall"
    assert "yahoo" in result.detail


def test_a_mall_without_an_order_mail_parser_is_refused():
    assert MALLS == ("rakuten", "yahoo", "amazon", "shopify")
    with pytest.raises(ValueError, match="rakuten-ftp"):
        parse_order_mail(fixture("rakuten-order-iso2022jp.eml"), "rakuten-ftp")


def test_read_mail_gives_the_envelope_with_utc_date_and_lf_text():
    envelope = read_mail(fixture("rakuten-order-iso2022jp.eml"))

    assert envelope.sender == "order@rakuten.co.jp"
    assert envelope.recipients == ("orders-1@mail.tatenpo.test",)
    assert envelope.message_id == "<20250314102350.0123456789@rakuten.co.jp>"
    assert envelope.date == datetime(2025, 3, 14, 1, 23, 50)
    assert not envelope.forwarded and "\r" not in envelope.text
    assert "[受注番号] 123456-20250314-0123456789" in envelope.text


def test_subjects_mixing_plain_text_encoded_words_and_raw_iso_2022_jp_decode():
    raw = (b"From: order@rakuten.co.jp\r\nSubject: Re: =?UTF-8?B?44CQ5qW95aSp5biC5aC044CR?= "
           + iso2022jp("注文内容ご確認") + b" (copy)\r\n\r\nbody\r\n")

    assert read_mail(raw).subject == "Re: 【楽天市場】 注文内容ご確認 (copy)"


def test_multipart_alternative_is_read_from_its_plain_part():
    raw = compose("shopify", shop_name="Sakura Tea", to="o@t.test", order_number="#1001", ordered_at=ORDERED_AT,
                  items=ITEMS)

    text = read_mail(raw).text

    assert "2x 有機栽培 緑茶" in text and "(sku: GT-20x3)" in text
    assert "×\u00a0" not in text and "Order summary" not in text


def test_a_copy_forwarded_as_an_attachment_is_read_from_the_attached_original():
    original = fixture("rakuten-order-iso2022jp.eml")
    outer = EmailMessage()
    outer["From"] = "shop-owner@example.jp"
    outer["To"] = "orders-1@mail.tatenpo.test"
    outer["Subject"] = "Fwd: 【楽天市場】注文内容ご確認（自動配信メール）"
    outer.set_content("転送します。")
    outer.add_attachment(message_from_bytes(original, policy=compat32))

    envelope = read_mail(outer.as_bytes())

    assert envelope.forwarded and envelope.sender == "order@rakuten.co.jp"
    assert parse_order_mail(outer.as_bytes(), "rakuten").number == "123456-20250314-0123456789"


def test_an_html_only_body_keeps_a_line_per_block():
    text = read_mail(fixture("shopify-order-ja-html-only.eml")).text

    assert "有機緑茶 ティーバッグ 20包 ×3袋セット × 2\n100g / 缶\nSKU: GT-20x3\n\n¥5,960\n" in text
    assert "font-weight" not in text


# --- The sandbox composer --------------------------------------------------------------------------------

ORDERED_AT = datetime(2025, 3, 14, 10, 23, 45, tzinfo=JST)
ITEMS = [
    {"code": "tea-bag-20x3", "variant": "tb20-3", "item_number": "tb-20x3", "sku": "GT-20x3",
     "title": "有機栽培 緑茶 ティーバッグ 20包 ×3袋セット (静岡県産)", "choices": [("容量", "2g×20包"), ("のし", "なし")],
     "quantity": 2, "price": 2980},
    {"code": "furoshiki-l", "variant": "", "item_number": "", "sku": "FR-L",
     "title": "㈱髙島屋謹製 風呂敷 ①号 ～青海波～", "choices": [("柄", "青海波")], "quantity": 1, "price": 1550},
]
# What each mall's mail prints as the line's codes (the composer's item → the parsed line).
EXPECTED_LINES = {
    "rakuten": lambda item: MailLine(item["item_number"] or item["code"], item["variant"], tuple(item["choices"]),
                                     item["title"], item["quantity"], item["price"]),
    "yahoo": lambda item: MailLine(item["code"], item["variant"], tuple(item["choices"]), item["title"],
                                   item["quantity"], item["price"]),
    "amazon": lambda item: MailLine(item["code"], "", (), item["title"], item["quantity"], item["price"]),
    "shopify": lambda item: MailLine(item["sku"], "", (), item["title"], item["quantity"], None),
}


@pytest.mark.parametrize("mall", ["rakuten", "rakuten-ftp", "yahoo", "amazon", "shopify"])
def test_a_composed_order_mail_reads_back_as_the_order_it_was_made_from(mall):
    family = "rakuten" if mall.startswith("rakuten") else mall
    number = order_number(mall, store_key="sakura-tea", sequence=7, ordered_at=ORDERED_AT)
    raw = compose(mall, shop_name="さくら茶舗", to="orders-1@mail.tatenpo.test", order_number=number,
                  ordered_at=ORDERED_AT, items=ITEMS, buyer="山田 花子")

    order = parse_order_mail(raw, family)

    assert order == MailOrder(family, number, datetime(2025, 3, 14, 1, 23, 45),
                              tuple(EXPECTED_LINES[family](item) for item in ITEMS))


def test_a_composed_rakuten_item_without_sku_prints_only_its_choices():
    raw = compose("rakuten", shop_name="さくら茶舗", to="o@t.test", order_number="123456-20250314-0000000001",
                  ordered_at=ORDERED_AT, items=ITEMS[1:])

    assert "SKU管理番号" not in read_mail(raw).text
    assert parse_order_mail(raw, "rakuten").lines[0].choices == (("柄", "青海波"),)


@pytest.mark.parametrize("mall, sender, content_type, encoding", [
    ("rakuten", "order@rakuten.co.jp", 'text/plain; charset="ISO-2022-JP"', "7bit"),
    ("yahoo", "store-shopping-order-master@mail.yahoo.co.jp", 'text/plain; charset="ISO-2022-JP"', "7bit"),
    ("amazon", "seller-notification@amazon.co.jp", 'text/plain; charset="utf-8"', "quoted-printable"),
    ("shopify", "Shopify <mailer@shopify.com>", "multipart/alternative", None),
])
def test_composed_mails_carry_each_malls_sender_charset_and_transfer_encoding(mall, sender, content_type, encoding):
    raw = compose(mall, shop_name="さくら茶舗", to="o@t.test", order_number="X-1", ordered_at=ORDERED_AT, items=ITEMS)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")

    assert f"From: {sender}" in head
    assert f"Content-Type: {content_type}" in head
    assert encoding is None or f"Content-Transfer-Encoding: {encoding}" in head
    assert "Date: Fri, 14 Mar 2025 10:23:45 +0900" in head and "Message-ID: <" in head
    if "ISO-2022-JP" in content_type:
        assert raw.isascii()  # 7bit: ①, ㈱, 髙 and ～ travel as JIS escapes


def test_a_composed_rakuten_cancellation_carries_the_order_number_and_is_not_an_order():
    raw = compose_cancellation("rakuten", shop_name="さくら茶舗", to="o@t.test",
                               order_number="123456-20250314-0123456789", cancelled_at=ORDERED_AT)

    result = parse_order_mail(raw, "rakuten")

    assert "[受注番号] 123456-20250314-0123456789" in read_mail(raw).text
    assert isinstance(result, NotAnOrder) and result.reason == "rakuten-cancellation"


def test_order_numbers_have_each_malls_shape_and_differ_by_sequence():
    shapes = {
        "rakuten": r"[0-9]{6}-20250314-[0-9]{10}",
        "rakuten-ftp": r"[0-9]{6}-20250314-[0-9]{10}",
        "yahoo": r"sakura-tea-[0-9]+",
        "amazon": r"250-[0-9]{7}-[0-9]{7}",
        "shopify": r"#10[0-9]{2}",
    }
    for mall, shape in shapes.items():
        numbers = {order_number(mall, store_key="sakura-tea", sequence=n, ordered_at=ORDERED_AT) for n in range(1, 50)}
        assert len(numbers) == 49
        assert all(re.fullmatch(shape, number) for number in numbers), (mall, sorted(numbers)[:3])
    assert order_number("rakuten", store_key="123456", sequence=1, ordered_at=ORDERED_AT).startswith("123456-")
    assert order_number("shopify", store_key="x", sequence=1, ordered_at=ORDERED_AT) == "#1001"
