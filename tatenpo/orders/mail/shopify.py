"""Shopify: the staff order notification ('新しい注文' / New order) sent to the addresses under
設定 › 通知 › スタッフ通知.

Shopify may send it from its own domains or from the store's sender address, so the sender cannot decide:
a mail is an order when its subject has the template's shape ('[shop] Order #1001 placed by …', or the
Japanese admin's '[shop] … 注文 #1001 …') AND its body lists line items the way the default templates do.
Sources for every fact are in docs/malls/order-mails.md.
"""
from __future__ import annotations

import re
import unicodedata

from .common import describe, fold, in_domains, notice, to_int, unknown_sender
from .model import MailEnvelope, MailLine, MailOrder, MailParseError, NotAnOrder

MALL = "shopify"

# Shopify's own mail domains: a notice from here that is not an order is named by its subject.
DOMAINS = ("shopify.com", "shopifyemail.com")

# Default staff template subject: '[{{shop_name}}] Order {{ name }} placed by {{ billing_address.name }}'
# (+ ' (Risk of fraud)'). Source: github.com/M2i3/shopify-i18n-emails, default/new-order-notification.txt.
_SUBJECT_EN = re.compile(r"^\[(?P<shop>[^\]]+)\]\s*Order\s+(?P<number>\S+)\s+placed\s+by\b", re.IGNORECASE)
# The Japanese admin translates the template; its exact wording is not published, so the subject must carry
# '[shop]', 注文 and a '#' order name, and none of the words of the other order notifications.
_SUBJECT_JA = re.compile(r"^\[(?P<shop>[^\]]+)\](?P<rest>.*注文.*)$")
_NUMBER_JA = re.compile(r"(#[0-9A-Za-z_-]+)")
_NOT_NEW_ORDER_JA = ("キャンセル", "返金", "払い戻し", "発送", "配送", "請求", "編集", "支払い")

# Classic text template: '{{ line.quantity }}x {{line.title }}    (sku: {{ line.sku }})'; a translated HTML
# variant adds '(SKU: …) for ¥2,200 each'. Source: github.com/M2i3/shopify-i18n-emails (default, nl-BE).
_CLASSIC = re.compile(r"^([0-9]+)\s*[xX×]\s+(.+?)\s*\(\s*sku\s*:\s*([^)]*?)\s*\)(?:\s*for\s+(.+?)\s+each)?\s*$",
                      re.IGNORECASE)
# Current default template: '{{ line.title }} × {{ line.quantity }}', then the variant title, 'SKU: …' and
# the line's price. Source: MALLS-style public knowledge of Shopify's default staff 'New order' template.
_MODERN = re.compile(r"^(.+?)\s*×\s*([0-9]+)\s*$")
_SKU = re.compile(r"^SKU\s*:\s*(.*)$", re.IGNORECASE)
_PRICE = re.compile(r"^(?:[¥￥]\s*([0-9][0-9,]*)(?:\.[0-9]+)?|([0-9][0-9,]*)\s*円)(?:\s*JPY)?$")


def parse(envelope: MailEnvelope) -> MailOrder | NotAnOrder:
    from_shopify = in_domains(envelope.sender, DOMAINS)
    number = _order_number(envelope.subject)
    if number is None:
        return notice(MALL, envelope) if from_shopify else unknown_sender(MALL, envelope)
    lines = _lines(envelope.text)
    if not lines:
        if from_shopify:
            raise MailParseError(f"Shopify order notification {number} without line items: {describe(envelope)}")
        # The subject alone proves nothing when the sender is not Shopify's.
        return NotAnOrder("unknown-sender", f"order-like subject without Shopify line items {describe(envelope)}")
    return MailOrder(MALL, number, envelope.date, tuple(lines))


def _order_number(subject: str) -> str | None:
    subject = unicodedata.normalize("NFKC", subject).strip()
    english = _SUBJECT_EN.match(subject)
    if english:
        return english.group("number")
    japanese = _SUBJECT_JA.match(subject)
    if japanese and not any(word in japanese.group("rest") for word in _NOT_NEW_ORDER_JA):
        number = _NUMBER_JA.search(japanese.group("rest"))
        return number.group(1) if number else None
    return None


def _lines(text: str) -> list[MailLine]:
    rows = [line.strip() for line in text.split("\n")]
    classic = [_classic(found) for row in rows if (found := _CLASSIC.match(row))]
    if classic:
        return classic
    lines: list[MailLine] = []
    for index, row in enumerate(rows):
        found = _MODERN.match(row)
        if not found:
            continue
        following: list[str] = []
        for next_row in rows[index + 1:index + 6]:
            if _MODERN.match(next_row):
                break
            if next_row:
                following.append(next_row)
        if any(_SKU.match(row) or _PRICE.match(fold(row)) for row in following):
            lines.append(_modern(found, following))
    return lines


def _classic(found: re.Match[str]) -> MailLine:
    each = re.search(r"[0-9][0-9,]*", fold(found.group(4) or ""))
    return MailLine(item_code=found.group(3).strip(), variant_code="", choices=(), title=found.group(2).strip(),
                    quantity=int(found.group(1)), unit_price=to_int(each.group(0)) if each else None)


def _modern(found: re.Match[str], following: list[str]) -> MailLine:
    quantity = int(found.group(2))
    sku = ""
    choices: tuple[tuple[str, str], ...] = ()
    total: int | None = None
    for position, row in enumerate(following):
        sku_line = _SKU.match(row)
        price_line = _PRICE.match(fold(row))
        if sku_line:
            sku = sku_line.group(1).strip()
        elif price_line and total is None:
            total = to_int(price_line.group(1) or price_line.group(2))
        elif position == 0:
            # The variant title ('Blue / M') prints option values without their names.
            choices = tuple((f"option{n}", value.strip()) for n, value in enumerate(row.split(" / "), start=1))
    # The template prints the line's price (unit × quantity).
    unit = total // quantity if total is not None and quantity and total % quantity == 0 else None
    return MailLine(item_code=sku, variant_code="", choices=choices, title=found.group(1).strip(),
                    quantity=quantity, unit_price=unit)
