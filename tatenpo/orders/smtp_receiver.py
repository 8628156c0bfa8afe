"""The SMTP door of 自動受注メール取込: a small mail server (`python -m tatenpo.orders.smtp_receiver`) that
takes the order mails the malls send to the addresses Tatenpo issued and hands each to `intake.receive`.

It is the last hop, not a mail exchanger: no AUTH, no relaying, loopback by default. A recipient Tatenpo did
not issue is refused at RCPT (550); a mail over ORDER_MAIL_MAX_BYTES at DATA (552). `250` is answered only
once the mail is committed; when the database cannot take it (down, locked) the answer is `451`, so the
sending server keeps the mail and tries again. The shop's MX or relay (Postfix `transport_maps`, say)
forwards the order-mail domain here.

Database work runs in worker threads (each in its own app context, its session removed afterwards), never
on the event loop, so one slow commit does not hold up the other connections.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from aiosmtpd.controller import Controller
from flask import Flask

from tatenpo.orders import intake
from tatenpo.platform import tasks
from tatenpo.platform.extensions import db

log = logging.getLogger("tatenpo.orders.smtp_receiver")  # the same name when run with -m

IDENT = "Tatenpo order-mail receiver"
# A mall sends each order mail to one address; more than this in one envelope is not an order mail.
MAX_RECIPIENTS = 20
DB_THREADS = 4

ANSWER_STORED = "250 OK"
ANSWER_UNKNOWN = "550 5.1.1 <{address}>: no such order-mail address here"
ANSWER_TOO_MANY = "452 4.5.3 Too many recipients"
ANSWER_TOO_LARGE = "552 5.3.4 Message too big for this order-mail receiver"
ANSWER_TRY_LATER = "451 4.3.0 The order-mail receiver cannot store mail right now; try again later"


class OrderMailHandler:
    """aiosmtpd's handler: RCPT checks the address against the database, DATA stores the mail."""

    def __init__(self, app: Flask, executor: ThreadPoolExecutor) -> None:
        self.app = app
        self.executor = executor

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return ANSWER_TOO_MANY
        loop = asyncio.get_running_loop()
        try:
            store_id = await loop.run_in_executor(self.executor, self._store_id, address)
        except Exception:  # the database is away: the sender keeps the mail and asks again
            log.exception("order-mail receiver: could not look up recipient %s", address)
            return ANSWER_TRY_LATER
        if store_id is None:
            log.info("order-mail receiver: refused recipient %s (not issued)", address)
            return ANSWER_UNKNOWN.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        loop = asyncio.get_running_loop()
        try:
            ids = await loop.run_in_executor(self.executor, self._store, envelope.original_content,
                                             list(envelope.rcpt_tos))
        except intake.MailTooLarge:
            return ANSWER_TOO_LARGE
        except Exception:  # nothing was answered yet, so the sender still has the mail and retries
            log.exception("order-mail receiver: could not store a mail from %s to %s", envelope.mail_from,
                          ", ".join(envelope.rcpt_tos))
            return ANSWER_TRY_LATER
        log.info("order-mail receiver: stored mail %s from %s", ", ".join(map(str, ids)), envelope.mail_from)
        return ANSWER_STORED

    def _store_id(self, address: str) -> int | None:
        with self.app.app_context():
            try:
                store = intake.store_for_address(address)
                return store.id if store is not None else None
            finally:
                db.session.remove()

    def _store(self, raw: bytes, recipients: list[str]) -> list[int]:
        """One stored mail per recipient store, each committed by `intake.receive`."""
        with self.app.app_context():
            try:
                stored: dict[int, int] = {}
                for address in recipients:
                    store = intake.store_for_address(address)
                    if store is None or store.id in stored:  # withdrawn since RCPT, or the same store twice
                        continue
                    stored[store.id] = intake.receive(raw, store, recipient=address, via="smtp").id
                return list(stored.values())
            except Exception:
                db.session.rollback()
                raise
            finally:
                db.session.remove()


class Receiver:
    """The SMTP server on its own thread (aiosmtpd's Controller) plus the threads that write the database."""

    def __init__(self, app: Flask, host: str | None = None, port: int | None = None) -> None:
        self.host = host or app.config["ORDER_SMTP_HOST"]
        self.port = int(port if port is not None else app.config["ORDER_SMTP_PORT"])
        with app.app_context():
            self.max_bytes = intake.max_bytes()
        self.executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="order-mail")
        self.controller = Controller(
            OrderMailHandler(app, self.executor), hostname=self.host, port=self.port,
            data_size_limit=self.max_bytes, ident=IDENT,
        )

    def start(self) -> Self:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
        self.executor.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tatenpo.orders.smtp_receiver",
                                     description="Receive order mails for the addresses Tatenpo issued.")
    parser.add_argument("--host", help="address to listen on (default: ORDER_SMTP_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: ORDER_SMTP_PORT, 2525)")
    args = parser.parse_args(argv)

    app = tasks.application()
    # aiosmtpd logs every command of every session at INFO; the receiver's own lines say what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    receiver = Receiver(app, args.host, args.port)
    try:
        receiver.start()
    except OSError as exc:
        log.error("order-mail receiver cannot listen on %s:%s: %s", receiver.host, receiver.port, exc)
        return 1
    log.info("order-mail receiver listening on smtp://%s:%s (largest mail %s MB)", receiver.host, receiver.port,
             receiver.max_bytes // (1024 * 1024))

    stopping = threading.Event()
    # SIGTERM (the launcher, systemd) ends as cleanly as Ctrl-C: a mail not yet answered is retried by its sender.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.wait(1):
        pass
    receiver.stop()
    log.info("order-mail receiver stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
