"""The sandbox malls' order mails: the raw mail each mall sends to a shop's order-mail address when an order is
placed, with the mall's sender, subject, charset, transfer encoding and body layout, and the mall's order
numbers. Written from the published formats (docs/malls/order-mails.md), not from Tatenpo's parsers; the
standard library only, and nothing from tatenpo.

    compose("rakuten", shop_name="サンドボックス茶舗", to="orders+1@mail.tatenpo.test",
            order_number="123456-20250314-0123456789", ordered_at=datetime(..., tzinfo=JST),
            items=[{"code": "tea-01", "variant": "1-a", "item_number": "tea-01", "sku": "TEA-01-A",
                    "title": "緑茶 ×3袋セット", "choices": [("容量", "100g")], "quantity": 2, "price": 2200}])
"""
from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

JST = timezone(timedelta(hours=9))

# The buyer and shop details every mall mail prints around the order; fixed, the sandbox has no buyers.
_BUYER_ADDRESS = ("〒158-0094", "東京都世田谷区玉川1-14-1", "050-0000-0000")
_SHOP_TEL = "050-0000-0001"


# --- ISO-2022-JP as the malls write it ---------------------------------------------------------------------

def _jis_pair(char: str) -> bytes:
    """One character as a JIS X 0208 pair, the way Windows writes ISO-2022-JP (CP50220): NEC row 13 (①, ㈱)
    and NEC-selected IBM extensions (髙) inside ESC $ B, ～ as 0x2141."""
    try:
        sjis = char.encode("cp932")
    except UnicodeEncodeError:
        sjis = char.encode("shift_jis")  # 〜 (U+301C) and the other JIS-only code points
    if len(sjis) != 2 or sjis[0] >= 0xF0:
        raise ValueError(f"{char!r} has no ISO-2022-JP code")
    lead, trail = sjis
    lead -= 0x40 if lead >= 0xE0 else 0
    first = (lead - 0x81) * 2 + 0x21 + (1 if trail >= 0x9F else 0)
    if trail >= 0x9F:
        second = trail - 0x7E
    elif trail >= 0x80:
        second = trail - 0x20
    else:
        second = trail - 0x1F
    return bytes((first, second))


def iso2022jp(text: str) -> bytes:
    """Text as ISO-2022-JP, back to ASCII at the end; half-width katakana become full-width as CP50220 does."""
    text = re.sub(r"[\uff61-\uff9f]+", lambda m: unicodedata.normalize("NFKC", m.group(0)), text)
    out = bytearray()
    double = False
    for char in text:
        if ord(char) < 0x80:
            if double:
                out += b"\x1b(B"
                double = False
            out.append(ord(char))
            continue
        if not double:
            out += b"\x1b$B"
            double = True
        out += _jis_pair(char)
    if double:
        out += b"\x1b(B"
    return bytes(out)


def _iso2022jp_header(text: str) -> str:
    """An RFC 2047 header value in ISO-2022-JP B words of at most 75 characters, each a complete sequence."""
    if text.isascii():
        return text
    words: list[str] = []
    chunk = ""
    for char in text:
        if chunk and len(iso2022jp(chunk + char)) > 42:  # 42 bytes → 56 base64 characters + 18 of framing
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return "\r\n ".join(f"=?ISO-2022-JP?B?{base64.b64encode(iso2022jp(word)).decode('ascii')}?=" for word in words)


def _iso2022jp_mail(sender: str, to: str, subject: str, moment: datetime, message_id: str, body: str) -> bytes:
    """A text/plain ISO-2022-JP 7bit mail, as 楽天 and Yahoo send theirs."""
    head = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {_iso2022jp_header(subject)}",
        f"Date: {format_datetime(moment.astimezone(JST))}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="ISO-2022-JP"',
        "Content-Transfer-Encoding: 7bit",
    ]
    lines = [iso2022jp(line) for line in body.split("\n")]
    return "\r\n".join(head).encode("ascii") + b"\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"


def _utf8_mail(sender: str, to: str, subject: str, moment: datetime, message_id: str, text: str,
               html: str | None = None) -> bytes:
    """A UTF-8 quoted-printable mail (multipart/alternative when there is HTML), as Amazon and Shopify send."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(moment.astimezone(JST))
    message["Message-ID"] = message_id
    message.set_content(text, charset="utf-8", cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message.as_bytes()


def _message_id(mall: str, order_number: str, to: str, domain: str, kind: str = "order") -> str:
    digest = hashlib.sha1(f"{mall}|{kind}|{order_number}|{to}".encode()).hexdigest()[:24]
    return f"<{digest}@{domain}>"


def _yen(amount: int) -> str:
    return f"{amount:,}"


def _checked(items: list[dict]) -> list[dict]:
    if not items:
        raise ValueError("an order mail needs at least one item")
    for item in items:
        missing = {"code", "title", "quantity", "price"} - set(item)
        if missing:
            raise ValueError(f"item without {', '.join(sorted(missing))}: {item!r}")
    return items


# --- 楽天市場 ----------------------------------------------------------------------------------------------

# From order@rakuten.co.jp, subject 【楽天市場】注文内容ご確認（自動配信メール）, ISO-2022-JP 7bit; bracketed labels,
# the [商品] section with '商品名 (商品番号)', SKU管理番号, 項目・選択肢 and 価格 lines, items divided by dashes
# and closed by asterisks.
RAKUTEN_SENDER = "order@rakuten.co.jp"
RAKUTEN_SUBJECT = "【楽天市場】注文内容ご確認（自動配信メール）"
RAKUTEN_CANCELLATION_SUBJECT = "【楽天市場】注文キャンセルのお知らせ（自動配信メール）"


def rakuten_mail(shop_name: str, to: str, order_number: str, ordered_at: datetime, items: list[dict],
             buyer: str) -> bytes:
    local = ordered_at.astimezone(JST)
    item_lines: list[str] = []
    for position, item in enumerate(items):
        if position:
            item_lines.append("-" * 40)
        item_lines.append(f"{item['title']} ({item.get('item_number') or item['code']})")
        if item.get("variant"):
            item_lines.append(f"SKU管理番号:{item['variant']}")
        item_lines.extend(f"{name}:{value}" for name, value in item.get("choices") or ())
        line_total = item["price"] * item["quantity"]
        item_lines.append(f"価格 {_yen(item['price'])}(円) x {item['quantity']}(個) = {_yen(line_total)}(円) ※10%税込")
    subtotal = sum(item["price"] * item["quantity"] for item in items)
    body = "\n".join([
        f"{buyer} 様",
        "",
        f"この度は、楽天市場内のショップ「{shop_name}」をご利用いただきまして、誠にありがとうございます。",
        "以下の内容でご注文を承りましたので、ご確認ください。",
        "",
        "このメールは楽天市場のシステムより自動配信しています。",
        "ご注文内容の変更・キャンセルのご依頼は、ショップまで直接ご連絡ください。",
        "ご注文内容は購入履歴からもご確認いただけます。",
        "https://order.my.rakuten.co.jp/",
        "",
        "-" * 60,
        f"[受注番号] {order_number}",
        f"[日時]     {local:%Y-%m-%d %H:%M:%S}",
        f"[注文者]   {buyer} 様",
        f"           {_BUYER_ADDRESS[0]} {_BUYER_ADDRESS[1]}",
        f"           (TEL) {_BUYER_ADDRESS[2]}",
        "[支払方法] クレジットカード",
        "[ポイント利用方法] なし",
        "[配送方法] 宅配便",
        "[備考]",
        f"[ショップ名] {shop_name}",
        f"           (TEL) {_SHOP_TEL}",
        "=" * 60,
        f"[送付先]   {buyer} 様",
        f"           {_BUYER_ADDRESS[0]} {_BUYER_ADDRESS[1]}",
        f"           (TEL) {_BUYER_ADDRESS[2]}",
        "[商品]",
        *item_lines,
        "*" * 60,
        f"小計       {_yen(subtotal)}(円)",
        "送料       0(円)",
        f"合計       {_yen(subtotal)}(円)",
        "*" * 60,
        "",
        "楽天市場 https://www.rakuten.co.jp/",
    ])
    return _iso2022jp_mail(RAKUTEN_SENDER, to, RAKUTEN_SUBJECT, ordered_at,
                           _message_id("rakuten", order_number, to, "rakuten.co.jp"), body)


def compose_cancellation(mall: str, *, shop_name: str, to: str, order_number: str, cancelled_at: datetime,
                         buyer: str = "楽天 太郎") -> bytes:
    """The notice `mall` mails when an order is cancelled (ValueError for a mall the sandbox sends none for)."""
    from .malls import mall as sandbox_mall

    composer = sandbox_mall(mall).compose_cancellation
    if composer is None:
        raise ValueError(f"the sandbox sends no cancellation notice for {mall!r}")
    return composer(shop_name, to, order_number, cancelled_at, buyer)


def rakuten_cancellation(shop_name: str, to: str, order_number: str, cancelled_at: datetime, buyer: str) -> bytes:
    """楽天's cancellation notice: same sender, its own subject, and a body that also carries [受注番号]."""
    body = "\n".join([
        f"{buyer} 様",
        "",
        f"楽天市場内のショップ「{shop_name}」でのご注文について、以下のご注文のキャンセルを承りました。",
        "",
        "-" * 60,
        f"[受注番号] {order_number}",
        f"[日時]     {cancelled_at.astimezone(JST):%Y-%m-%d %H:%M:%S}",
        f"[ショップ名] {shop_name}",
        "-" * 60,
        "",
        "楽天市場 https://www.rakuten.co.jp/",
    ])
    return _iso2022jp_mail(RAKUTEN_SENDER, to, RAKUTEN_CANCELLATION_SUBJECT, cancelled_at,
                           _message_id("rakuten", order_number, to, "rakuten.co.jp", "cancellation"), body)


# --- Yahoo!ショッピング -----------------------------------------------------------------------------------

# The store's 注文確認 notification: ISO-2022-JP 7bit, 注文ID / 注文日時, items between ￣ and = lines.
YAHOO_SENDER = "store-shopping-order-master@mail.yahoo.co.jp"


def yahoo_mail(shop_name: str, to: str, order_number: str, ordered_at: datetime, items: list[dict],
           buyer: str) -> bytes:
    local = ordered_at.astimezone(JST)
    item_lines: list[str] = []
    for position, item in enumerate(items, start=1):
        item_lines.append(f"（{position}）{item['title']}")
        item_lines.append(f"{item['code']}/{item['variant']}" if item.get("variant") else item["code"])
        item_lines.extend(f"{name}：{value}" for name, value in item.get("choices") or ())
        item_lines.append(f"{_yen(item['price'])}円×{item['quantity']}＝{_yen(item['price'] * item['quantity'])}円")
    subtotal = sum(item["price"] * item["quantity"] for item in items)
    body = "\n".join([
        f"{shop_name} ご担当者様",
        "",
        "Yahoo!ショッピングで注文がありました。",
        "ストアクリエイターProの注文管理から注文内容をご確認ください。",
        "https://pro.store.yahoo.co.jp/",
        "",
        f"注文ID　：{order_number}",
        f"注文日時：{local:%Y年%m月%d日 %H時%M分%S秒}",
        "",
        "お支払い方法：クレジットカード決済",
        "お届け方法：宅配便",
        "",
        "商品情報",
        "￣" * 20,
        *item_lines,
        "=" * 52,
        f"商品の合計金額 ： {_yen(subtotal)}円",
        "送料：0円",
        "手数料：0円",
        f"合計金額 ：{_yen(subtotal)}円",
        "",
        "※このメールは送信専用です。",
    ])
    return _iso2022jp_mail(YAHOO_SENDER, to, f"【Yahoo!ショッピング】注文確認：{shop_name}", ordered_at,
                           _message_id("yahoo", order_number, to, "mail.yahoo.co.jp"), body)


# --- Amazon.co.jp ----------------------------------------------------------------------------------------

# 注文確定 from seller-notification@amazon.co.jp, subject '注文確定： <SKU> <title>', UTF-8; per item 商品,
# SKU, 数量 and 価格 (the line's price) as 'label：value' lines.
AMAZON_SENDER = "seller-notification@amazon.co.jp"


def amazon_mail(shop_name: str, to: str, order_number: str, ordered_at: datetime, items: list[dict],
            buyer: str) -> bytes:
    local = ordered_at.astimezone(JST)
    ship_by = local + timedelta(days=2)
    item_lines: list[str] = []
    for item in items:
        line_total = item["price"] * item["quantity"]
        item_lines.extend([
            f"商品：{item['title']}",
            "コンディション：新品",
            f"SKU：{item['code']}",
            f"数量：{item['quantity']}",
            f"価格：￥{_yen(line_total)}",
            f"Amazon手数料：-￥{_yen(line_total // 10)}",
            f"売上金：￥{_yen(line_total - line_total // 10)}",
            "",
        ])
    text = "\n".join([
        f"{shop_name} 様",
        "",
        f"Amazon.co.jpで新規の注文がありました。出荷予定日{ship_by:%Y/%m/%d}までに商品を出荷し、出荷通知を送信してください。",
        "",
        "注文の詳細",
        f"注文番号：{order_number}",
        f"注文日：{local:%Y/%m/%d}",
        f"出荷予定日：{ship_by:%Y/%m/%d}",
        "",
        *item_lines,
        "注文管理で注文の詳細を確認してください:",
        f"https://sellercentral.amazon.co.jp/orders-v3/order/{order_number}",
        "",
        "Amazon.co.jp セラーセントラル",
    ])
    subject = f"注文確定： {items[0]['code']} {items[0]['title']}"
    return _utf8_mail(AMAZON_SENDER, to, subject, ordered_at, _message_id("amazon", order_number, to, "amazon.co.jp"),
                      text)


# --- Shopify ---------------------------------------------------------------------------------------------

# The staff 'New order' notification: '[shop] Order #1001 placed by …'; the text part is the classic
# template ('2x title    (sku: …)'), the HTML part today's ('title × 2', 'SKU: …', the line's price).
SHOPIFY_SENDER = "Shopify <mailer@shopify.com>"


def shopify_mail(shop_name: str, to: str, order_number: str, ordered_at: datetime, items: list[dict],
             buyer: str) -> bytes:
    local = ordered_at.astimezone(JST)
    text = "\n".join([
        f"Hello {shop_name},",
        "",
        f"{buyer} placed a new order with you today, {local:%b %d %I:%M%p}:",
        "",
        *(f"{item['quantity']}x {item['title']}    (sku: {item.get('sku') or ''})" for item in items),
        "",
        "Payment processing method:",
        "  Shopify Payments",
        "",
        "Delivery method:",
        "  Standard",
        "",
        "Shipping address:",
        f"  {buyer}",
        f"  {_BUYER_ADDRESS[1]}",
        f"  {_BUYER_ADDRESS[0]}",
        "  Japan",
        f"  {_BUYER_ADDRESS[2]}",
    ])
    rows = []
    for item in items:
        variant = " / ".join(value for _, value in item.get("choices") or ())
        rows.append(
            "<tr><td>"
            f"<span>{_html(item['title'])}&nbsp;&times;&nbsp;{item['quantity']}</span><br>"
            + (f"<span>{_html(variant)}</span><br>" if variant else "")
            + (f"<span>SKU: {_html(item['sku'])}</span>" if item.get("sku") else "")
            + f"</td><td><p>¥{_yen(item['price'] * item['quantity'])}</p></td></tr>"
        )
    html = (
        "<html><body>"
        f"<p>{_html(buyer)} placed a new order with your store, {local:%b %d at %I:%M %p}:</p>"
        f"<p><a href=\"https://admin.shopify.com/\">View order {_html(order_number)}</a></p>"
        "<h3>Order summary</h3><table>" + "".join(rows) + "</table>"
        "</body></html>"
    )
    return _utf8_mail(SHOPIFY_SENDER, to, f"[{shop_name}] Order {order_number} placed by {buyer}", ordered_at,
                      _message_id("shopify", order_number, to, "shopify.com"), text, html)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- By mall ----------------------------------------------------------------------------------------------

def compose(mall: str, *, shop_name: str, to: str, order_number: str, ordered_at: datetime, items: list[dict],
            buyer: str = "楽天 太郎") -> bytes:
    """The raw order mail `mall` sends to `to` for an order; `ordered_at` must be timezone-aware.

    Each item: code (楽天 商品管理番号 / Yahoo code / Amazon seller-sku / Shopify handle), variant (楽天
    SKU管理番号 / Yahoo sub-code / ''), item_number (楽天 商品番号, '' prints the code), sku (merchant SKU, the
    Shopify variant sku), title, choices [(name, value)], quantity, price (yen, per unit)."""
    from .malls import mall as sandbox_mall  # the registry imports the mall modules, which import this one

    composer = sandbox_mall(mall).compose_mail
    if ordered_at.tzinfo is None:
        raise ValueError("ordered_at must be timezone-aware")
    return composer(shop_name, to, order_number, ordered_at, _checked(items), buyer)


# --- Order numbers ---------------------------------------------------------------------------------------

def _stable(text: str, modulo: int) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % modulo


def rakuten_number(store_key: str, sequence: int, ordered_at: datetime) -> str:
    shop = store_key if re.fullmatch(r"[0-9]{6}", store_key) else str(100000 + _stable(store_key, 900000))
    # 7919 is coprime with 10**10, so distinct sequences give distinct serials.
    serial = (sequence * 7919 + int(shop)) % 10**10
    return f"{shop}-{ordered_at.astimezone(JST):%Y%m%d}-{serial:010d}"


def yahoo_number(store_key: str, sequence: int, ordered_at: datetime) -> str:
    store = re.sub(r"[^a-z0-9-]", "", store_key.lower()) or "store"
    return f"{store}-{10000000 + sequence}"


def amazon_number(store_key: str, sequence: int, ordered_at: datetime) -> str:
    middle = (sequence * 7919 + _stable(store_key, 10**7)) % 10**7
    last = (sequence * 104729 + int(ordered_at.timestamp())) % 10**7
    return f"250-{middle:07d}-{last:07d}"


def shopify_number(store_key: str, sequence: int, ordered_at: datetime) -> str:
    return f"#{1000 + sequence}"


def order_number(mall: str, *, store_key: str, sequence: int, ordered_at: datetime) -> str:
    """An order number in the mall's own shape: 楽天 <6-digit shop id>-<yyyymmdd>-<10 digits>, Yahoo
    <storeid>-<number>, Amazon 250-1234567-1234567, Shopify #1001 (sequence 1 → #1001)."""
    from .malls import mall as sandbox_mall

    return sandbox_mall(mall).order_number(store_key, sequence, ordered_at)
