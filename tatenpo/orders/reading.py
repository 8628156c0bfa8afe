"""自動受注メール取込, the second half: read a stored order mail into an order (tatenpo.orders.book), or keep it
as ignored or failed with the reason. Run by the worker right after the mail is stored, by the sweep for a
mail whose job was lost, by `orders import-mail` at once, and again by `orders reparse` after a parser fix.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import select

from tatenpo import malls
from tatenpo.models import InboundMail, MailStatus, Order, Store, utcnow
from tatenpo.orders import book
from tatenpo.orders.mail import MailOrder, MailParseError, NotAnOrder, parse_order_mail
from tatenpo.platform.extensions import db

log = logging.getLogger(__name__)


@dataclass
class ReadOutcome:
    mail_id: int
    status: str  # MailStatus value: order / ignored / failed
    reason: Optional[str] = None
    order_number: Optional[str] = None
    duplicate: bool = False  # the order was known already: nothing moved again
    lines: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"mail_id": self.mail_id, "status": self.status, "reason": self.reason,
                "order_number": self.order_number, "duplicate": self.duplicate, "lines": self.lines}


def read(mail_id: int, *, again: bool = False) -> Optional[ReadOutcome]:
    """Read one stored mail and commit what it says. A mail already read is left alone unless `again`
    (reparse); None when there is no such mail."""
    mail = db.session.get(InboundMail, mail_id)
    if mail is None:
        return None
    if mail.status != MailStatus.RECEIVED.value and not again:
        return _outcome(mail)
    store = db.session.get(Store, mail.store_id) if mail.store_id is not None else None
    if store is None:
        return _finish(mail, MailStatus.FAILED, "the store of this address no longer exists")
    try:
        parsed = parse_order_mail(mail.raw, malls.family_of(store.mall))
    except MailParseError as exc:
        return _finish(mail, MailStatus.FAILED, str(exc))
    except Exception as exc:  # a parser bug: the mail stays, marked, for `orders reparse` after the fix
        log.exception("order mail %s could not be read", mail.id)
        return _finish(mail, MailStatus.FAILED, f"parser error: {exc!r}")
    if isinstance(parsed, NotAnOrder):
        return _finish(mail, MailStatus.IGNORED, f"{parsed.reason}: {parsed.detail}")
    return _book(mail, store, parsed)


def read_all(mail_ids: list[int], *, again: bool = False) -> list[ReadOutcome]:
    return [outcome for outcome in (read(mail_id, again=again) for mail_id in mail_ids) if outcome is not None]


def failed_ids() -> list[int]:
    return list(db.session.scalars(
        select(InboundMail.id).where(InboundMail.status == MailStatus.FAILED.value).order_by(InboundMail.id)))


def _book(mail: InboundMail, store: Store, parsed: MailOrder) -> ReadOutcome:
    booked = book.record(store, parsed, source="mail")
    mail.order_id = booked.order.id
    outcome = _finish(mail, MailStatus.ORDER, None, commit=False)
    db.session.commit()
    outcome.order_number = booked.order.number
    outcome.duplicate = not booked.created
    outcome.lines = _lines(booked.order)
    return outcome


def _finish(mail: InboundMail, status: MailStatus, reason: Optional[str], commit: bool = True) -> ReadOutcome:
    mail.status = status.value
    mail.reason = reason
    mail.read_at = utcnow()
    if commit:
        db.session.commit()
    return ReadOutcome(mail.id, status.value, reason)


def _outcome(mail: InboundMail) -> ReadOutcome:
    order = db.session.get(Order, mail.order_id) if mail.order_id else None
    return ReadOutcome(mail.id, mail.status, mail.reason, order.number if order else None, duplicate=False,
                       lines=_lines(order) if order else [])


def _lines(order: Order) -> list[dict]:
    return [{"code": line.item_code, "variant": line.variant_code, "choices": line.choices, "title": line.title,
             "quantity": line.quantity, "matched": line.listing_id is not None, "stock": line.stock}
            for line in order.lines]
