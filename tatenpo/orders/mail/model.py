"""What reading an order mail produces: an order with its lines, or the reason the mail is not an order.

Plain frozen dataclasses, so a parsed mail can be compared, hashed and stored without the parser.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class MailLine:
    """One line of an order as the mall's mail printed it."""

    item_code: str  # 楽天 商品番号, Yahoo code, Amazon SKU, Shopify sku ('' when none is printed)
    variant_code: str  # 楽天 SKU管理番号 (variantId), Yahoo sub-code, '' otherwise
    choices: tuple[tuple[str, str], ...]  # 項目・選択肢 such as (("カラー", "ブルー"),); Shopify option values
    title: str
    quantity: int  # only ever from the quantity field: titles carry numbers (×3袋セット, 20包, ①)
    unit_price: int | None  # yen


@dataclass(frozen=True)
class MailOrder:
    """An order read from a mall's order mail."""

    mall: str  # 'rakuten' | 'yahoo' | 'amazon' | 'shopify'
    number: str  # the mall's order number: 123456-20250314-0123456789, store-10000123, 503-…, #1001
    ordered_at: datetime | None  # naive UTC; the mails print JST
    lines: tuple[MailLine, ...]


@dataclass(frozen=True)
class NotAnOrder:
    """A mail that is kept but moves no stock, with a stable machine reason and a short English detail."""

    reason: str  # e.g. 'unknown-sender', 'rakuten-cancellation', 'daily-report', 'not-an-order-subject'
    detail: str


class MailParseError(ValueError):
    """An order mail (right sender and subject) whose body cannot be read; the message says what was missing."""


@dataclass(frozen=True)
class MailEnvelope:
    """A raw mail decoded into what the parsers decide on: sender, subject, date and plain text."""

    sender: str  # bare lower-case address from the From header (of the original, for a forwarded copy)
    recipients: tuple[str, ...]  # To, Cc, Delivered-To and X-Original-To addresses, lower-case, in order
    subject: str  # decoded; for a forwarded copy the original subject
    message_id: str | None
    date: datetime | None  # naive UTC
    text: str  # the body as text with LF line ends; for a forwarded copy the part below the quoted headers
    forwarded: bool  # a hand-forwarded copy (Fwd:/FW:/転送: subject, or the original attached)
