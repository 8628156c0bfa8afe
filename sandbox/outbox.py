"""The order mails of the sandbox malls: which mail an order produces (in the mall's own format, composed by
order_mails; 楽天 also sends a notice when an order is cancelled) and the delivery of the outbox to the shop's
registered order-mail address over SMTP.

Delivery goes to the SMTP server at SANDBOX_SMTP_URL (smtp://host:port) and behaves like a real mall's MTA:
the purchase only queues the mail; one thread sends queued mails oldest first, retries a temporary failure
(a 4xx reply, a refused or dropped connection) after 1 s, 2 s, 4 s … at most 30 s apart, and marks a 5xx reply
as failed. Without SANDBOX_SMTP_URL mails stay queued, each saying why.
"""
from __future__ import annotations

import logging
import smtplib
import threading
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from urllib.parse import urlsplit

from . import order_mails
from .malls import mall as sandbox_mall
from .state import State

log = logging.getLogger(__name__)

JST = timezone(timedelta(hours=9))
NO_SMTP = "SANDBOX_SMTP_URL is not set"
RETRY_CAP = 30.0
SMTP_TIMEOUT = 30.0
# Named outright: smtplib would otherwise look up this machine's FQDN, which can stall for seconds on a laptop.
EHLO_NAME = "sandbox-malls.localhost"


# What an order sends ------------------------------------------------------------------------------

def order_number(store: dict, sequence: int, ordered_at: datetime) -> str:
    """The store's `sequence`-th order number, in the mall's real shape."""
    return order_mails.order_number(store["mall"], store_key=sandbox_mall(store["mall"]).store_key(store),
                                    sequence=sequence, ordered_at=ordered_at)


def order_mail(store: dict, order: dict) -> tuple[str, bytes]:
    """(envelope sender, raw mail) of the order confirmation the mall sends the shop."""
    raw = order_mails.compose(
        store["mall"], shop_name=store["name"], to=store["order_mail"], order_number=order["number"],
        ordered_at=datetime.fromisoformat(order["ordered_at"]), items=_mail_items(order), buyer=sandbox_mall(store["mall"]).buyer,
    )
    return sender_of(raw), raw


def cancellation_mail(store: dict, order: dict) -> tuple[str, bytes] | None:
    """(envelope sender, raw mail) of the notice 楽天 sends when an order is cancelled (it carries [受注番号] too,
    so an order-mail reader must tell it apart); None for the other malls, whose notices the sandbox leaves out."""
    if sandbox_mall(store["mall"]).compose_cancellation is None:
        return None
    raw = order_mails.compose_cancellation(store["mall"], shop_name=store["name"], to=store["order_mail"],
                                           order_number=order["number"], cancelled_at=datetime.now(JST),
                                           buyer=sandbox_mall(store["mall"]).buyer)
    return sender_of(raw), raw


def _mail_items(order: dict) -> list[dict]:
    # Orders keep choices as JSON lists; the mail takes (name, value) pairs.
    return [{**line, "choices": [tuple(choice) for choice in line["choices"]]} for line in order["items"]]


def sender_of(raw: bytes) -> str:
    """The address in the mail's From header: a mall's MTA sends with its own address as the envelope sender."""
    header = message_from_bytes(raw, policy=policy.default)["From"]
    if header is None or not header.addresses:
        raise ValueError("the composed mail has no From address")
    return header.addresses[0].addr_spec


# Delivery -----------------------------------------------------------------------------------------

def smtp_target(url: str | None) -> tuple[str, int] | None:
    """(host, port) from SANDBOX_SMTP_URL, None when it is unset."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise ValueError(f"SANDBOX_SMTP_URL must look like smtp://127.0.0.1:2525, not {url!r}")
    return parts.hostname, parts.port or 25


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` temporary failures: 1, 2, 4 … capped at RETRY_CAP."""
    return min(2.0 ** (attempts - 1), RETRY_CAP)


class Delivery(threading.Thread):
    """The one thread that empties the outbox. It sleeps until a mail is queued (State.mail_queued) or the
    earliest retry is due."""

    def __init__(self, state: State, target: tuple[str, int] | None) -> None:
        super().__init__(name="sandbox-mail-delivery", daemon=True)
        self.state = state
        self.target = target

    def run(self) -> None:
        while True:
            self.state.mail_queued.clear()  # before looking, so a mail queued meanwhile wakes the next wait
            self.state.mail_queued.wait(self.deliver_due())

    def deliver_due(self) -> float | None:
        """Try every mail that is due; return the seconds until the next retry (None: nothing to wait for)."""
        if self.target is None:
            self.state.hold_mails(NO_SMTP)
            return None
        while (mail := self.state.due_mail(time.time())) is not None:
            self.attempt(mail)
        due = self.state.next_try_at()
        return None if due is None else max(0.0, due - time.time())

    def attempt(self, mail: dict) -> None:
        try:
            send(self.target, mail["mail_from"], mail["rcpt_to"], mail["raw"])
        except (smtplib.SMTPException, OSError) as exc:
            permanent, reason = classify(exc)
            if permanent:
                self.state.mail_tried(mail["id"], "failed", reason)
            else:
                delay = retry_delay(mail["attempts"] + 1)
                self.state.mail_tried(mail["id"], "queued", reason, next_try_at=time.time() + delay)
        except Exception as exc:  # a mail smtplib cannot even send (say, a non-ASCII address) would never go
            log.exception("mail %s cannot be sent", mail["id"])
            self.state.mail_tried(mail["id"], "failed", f"{type(exc).__name__}: {exc}")
        else:
            self.state.mail_tried(mail["id"], "sent")


def send(target: tuple[str, int], sender: str, recipient: str, raw: bytes) -> None:
    host, port = target
    with smtplib.SMTP(host, port, local_hostname=EHLO_NAME, timeout=SMTP_TIMEOUT) as smtp:
        smtp.sendmail(sender, [recipient], raw)


def classify(exc: Exception) -> tuple[bool, str]:
    """(permanent, reason) of a failed delivery: a 5xx reply is final; a 4xx reply, a refused, dropped or
    timed-out connection is tried again, as an MTA does."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, message = next(iter(exc.recipients.values()))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, message = exc.smtp_code, exc.smtp_error
    else:
        return False, f"{type(exc).__name__}: {exc}"
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return 500 <= code < 600, f"{code} {text}"


def start(state: State, smtp_url: str | None) -> Delivery:
    """Start delivering the outbox (raises ValueError for a malformed SANDBOX_SMTP_URL)."""
    delivery = Delivery(state, smtp_target(smtp_url))
    delivery.start()
    return delivery
