"""Amazon.co.jp seller notifications: 注文確定 (today's 'sold, ship now' mail) and the older
「商品を出荷してください」 layout.

Both list 注文番号 and, per item, 商品(名), SKU, 数量 and 価格 as 'label：value' lines (full-width colons
today, half-width in the older layout). Amazon asks sellers not to rely on these mails; the Orders API is
the real route, the mail only shortens the window. Sources for every fact are in docs/malls/order-mails.md.
"""
from __future__ import annotations

import re
from datetime import datetime

from .common import describe, fold, fold_subject, in_domains, jst, notice, to_int, unknown_sender, utc_date_in_japan
from .model import MailEnvelope, MailLine, MailOrder, MailParseError, NotAnOrder

MALL = "amazon"

# 注文確定 comes from seller-notification@amazon.co.jp (public importers filter on it, e.g.
# github.com/pankoha/ec-agent-system-template-codex, apps-script/amazon-order-importer); the older
# 商品を出荷してください came from do-not-reply@amazon.co.jp (github.com/MieMie-mmy/Upside_Golf_RCM).
SENDERS = frozenset({"seller-notification@amazon.co.jp", "do-not-reply@amazon.co.jp"})
DOMAINS = ("amazon.co.jp", "amazon.com")
# Buyer–seller messages are relayed from @marketplace.amazon.co.jp: contact, never an order.
MESSAGES_DOMAIN = ("marketplace.amazon.co.jp",)
ORDER_SUBJECT_PREFIX = "注文確定"  # '注文確定： <SKU> <title>' (pankoha/ec-agent-system-template-codex README)
OLDER_ORDER_SUBJECT = "商品を出荷してください"

# 3-7-7 digits. Source: Seller Central help (order-id 英数字(3-7-7形式), e.g. 058-3563777-5518068).
_NUMBER = re.compile(r"注文番号\s*:\s*([0-9]{3}-[0-9]{7}-[0-9]{7})")
_DATE = re.compile(r"注文日(?:時)?\s*:\s*([0-9]{4})[/-]([0-9]{1,2})[/-]([0-9]{1,2})"
                   r"(?:\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?")
_FIELD = re.compile(r"^\s*(商品名|商品|出品者SKU|SKU|数量|価格)\s*[:：]\s*(.*)$")
# The older layout closes the order part with a line of spaced dashes before the buyer details.
_END = re.compile(r"^\s*(?:-\s){4,}")


def parse(envelope: MailEnvelope) -> MailOrder | NotAnOrder:
    if in_domains(envelope.sender, MESSAGES_DOMAIN):
        return NotAnOrder("contact-form", f"amazon buyer message {describe(envelope)}")
    if envelope.sender not in SENDERS:
        return notice(MALL, envelope) if in_domains(envelope.sender, DOMAINS) else unknown_sender(MALL, envelope)
    subject = fold_subject(envelope.subject)
    if not (subject.startswith(ORDER_SUBJECT_PREFIX) or OLDER_ORDER_SUBJECT in subject):
        return notice(MALL, envelope)
    return _order(envelope)


def _order(envelope: MailEnvelope) -> MailOrder:
    text_lines = envelope.text.split("\n")
    number = next((m.group(1) for line in text_lines if (m := _NUMBER.search(fold(line)))), None)
    if number is None:
        raise MailParseError(f"Amazon order mail without 注文番号: {describe(envelope)}")
    items: list[dict[str, str]] = []
    for line in text_lines:
        if _END.match(line):
            break
        field = _FIELD.match(line)
        if not field:
            continue
        label, value = field.group(1), field.group(2).strip()
        key = {"商品名": "title", "商品": "title", "出品者SKU": "sku", "SKU": "sku", "数量": "quantity",
               "価格": "price"}[label]
        # A new item starts at its title, or at a SKU when the mail prints no titles.
        starts_item = (key == "title" and bool({"title", "sku"} & set(items[-1]))) if items else True
        if starts_item or (key == "sku" and "sku" in items[-1]):
            items.append({})
        items[-1].setdefault(key, value)
    if not items:
        raise MailParseError(f"Amazon order mail {number} without 商品/SKU/数量 lines")
    return MailOrder(MALL, number, _ordered_at(text_lines, envelope), tuple(_item(number, item) for item in items))


def _item(number: str, item: dict[str, str]) -> MailLine:
    quantity = re.search(r"[0-9]+", fold(item.get("quantity", "")))
    if not quantity:
        raise MailParseError(f"Amazon order {number}: item {item.get('sku') or item.get('title')!r} without 数量")
    count = int(quantity.group(0))
    price = re.search(r"[0-9][0-9,]*", fold(item.get("price", "")))
    # 価格 is the line's price, the unit price times the quantity, as the order API's ItemPrice is
    # (Amazon MWS ListOrderItems, quoted at metacpan.org/pod/Amazon::MWS::XML::OrderlineItem).
    total = to_int(price.group(0)) if price else None
    unit = total // count if total is not None and count and total % count == 0 else None
    return MailLine(item_code=item.get("sku", ""), variant_code="", choices=(), title=item.get("title", ""),
                    quantity=count, unit_price=unit)


def _ordered_at(text_lines: list[str], envelope: MailEnvelope) -> datetime | None:
    """注文日 is a date; its time comes from the mail's Date when that is the same day in Japan."""
    found = next((m for line in text_lines if (m := _DATE.search(fold(line)))), None)
    if found is None:
        return envelope.date
    year, month, day, hour, minute, second = found.groups()
    if hour is not None:
        return jst(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    if envelope.date is not None and utc_date_in_japan(envelope.date) == (int(year), int(month), int(day)):
        return envelope.date
    return jst(int(year), int(month), int(day))
