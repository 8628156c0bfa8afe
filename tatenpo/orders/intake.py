"""自動受注メール取込, the first half: a mail that reached an order-mail address Tatenpo issued is stored raw
and committed before anyone reads it, then read by a background job (tatenpo.jobs.read_order_mail).

Every door calls `receive`: the SMTP receiver, the HTTP door for inbound-mail services and the shell. A door
answers "accepted" only after `receive` returned, so a mail is either in the database or still with its
sender (who retries); a crash or a parser bug afterwards loses nothing (`orders reparse`).
"""
from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Optional

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from tatenpo.models import InboundMail, MailStatus, Store, utcnow
from tatenpo.platform import tasks
from tatenpo.platform.extensions import db

log = logging.getLogger(__name__)

READ_JOB = "tatenpo.jobs.read_order_mail"


class IntakeError(ValueError):
    """A mail no door may accept; the message is for the sender or the person at the shell."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


class UnknownRecipient(IntakeError):
    """Not an address Tatenpo issued (SMTP 550)."""


class MailTooLarge(IntakeError):
    """Over ORDER_MAIL_MAX_BYTES (SMTP 552, HTTP 413)."""


def max_bytes() -> int:
    return int(current_app.config["ORDER_MAIL_MAX_BYTES"])


def store_for_address(address: str) -> Optional[Store]:
    """The store an order-mail address was issued to (case does not matter in what mail servers pass on)."""
    address = (address or "").strip().strip("<>").lower()
    if not address:
        return None
    return db.session.scalar(select(Store).where(func.lower(Store.order_mail_address) == address))


def store_for_token(token: str) -> Optional[Store]:
    """The store whose HTTP door has this secret."""
    if not token:
        return None
    return db.session.scalar(select(Store).where(Store.inbound_token == token))


def issue_token(store: Store) -> str:
    """A new secret for the store's HTTP door (the old one stops working)."""
    store.inbound_token = secrets.token_urlsafe(24)
    return store.inbound_token


def receive(raw: bytes, store: Store, *, recipient: str, via: str) -> InboundMail:
    """Keep one mail for `store` and queue its reading. Commits: once this returns, the mail is safe.

    Raises MailTooLarge; a database error propagates, so the door answers with a temporary failure and the
    sender tries again."""
    if len(raw) > max_bytes():
        raise MailTooLarge(_l("The mail is larger than %(mb)s MB.", mb=max_bytes() // (1024 * 1024)))
    sender, subject, message_id = _headers(raw)
    mail = InboundMail(store_id=store.id, recipient=recipient[:254], sender=sender[:254], subject=subject[:500],
                       message_id=message_id, raw=raw, size=len(raw), via=via, status=MailStatus.RECEIVED.value)
    db.session.add(mail)
    store.last_order_mail_at = utcnow()
    db.session.commit()
    queue_read(mail.id)
    return mail


def receive_for_address(raw: bytes, recipient: str, *, via: str) -> InboundMail:
    """`receive` for the store the recipient address was issued to; UnknownRecipient otherwise."""
    store = store_for_address(recipient)
    if store is None:
        raise UnknownRecipient(_l("%(address)s is not an order-mail address issued by Tatenpo.", address=recipient))
    return receive(raw, store, recipient=recipient, via=via)


def recipients_of(raw: bytes) -> list[str]:
    """The addresses in To/Cc/Delivered-To of a stored file (the shell finds the store by them)."""
    headers = BytesHeaderParser().parsebytes(raw)
    fields = [value for name in ("Delivered-To", "X-Original-To", "To", "Cc") for value in headers.get_all(name, [])]
    return [address for _name, address in getaddresses(fields) if address]


def queue_read(mail_id: int) -> bool:
    """Queue the reading of a stored mail; False when Redis is away (the sweep reads it later)."""
    try:
        tasks.enqueue(READ_JOB, mail_id)
        return True
    except Exception:  # the mail is committed; the sweep picks up unread mails
        log.warning("order mail %s stored but not queued; the sweep will read it", mail_id, exc_info=True)
        return False


def unread(older_than_seconds: int = 60, limit: int = 200) -> list[int]:
    """Stored mails nobody has read for a while (their job was lost with Redis): the sweep queues them again."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    return list(db.session.scalars(
        select(InboundMail.id)
        .where(InboundMail.status == MailStatus.RECEIVED.value, InboundMail.received_at <= cutoff)
        .order_by(InboundMail.id)
        .limit(limit)
    ))


def _headers(raw: bytes) -> tuple[str, str, Optional[str]]:
    """From, Subject and Message-ID, decoded as far as they can be (the parsers read the rest later)."""
    try:
        headers = BytesHeaderParser().parsebytes(raw)
        sender = ", ".join(address for _name, address in getaddresses(headers.get_all("From", [])))
        subject = str(make_header(decode_header(headers.get("Subject", "") or "")))
        message_id = (headers.get("Message-ID") or "").strip()[:500] or None
        return sender, subject, message_id
    except Exception:  # a malformed header is the parser's business to report, not a reason to refuse the mail
        return "", "", None
