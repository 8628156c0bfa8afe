"""Outgoing mail (e.g. telling an applicant that support finished their application).

With MAIL_SERVER configured each message goes out by SMTP. Without it, a self-hosted install usually has no
mail server, so each message is written as an .eml file under instance/mail/ and listed in the support
center instead of being lost.
"""
from __future__ import annotations

import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid, parsedate_to_datetime
from pathlib import Path
from typing import Optional

from flask import current_app

from tatenpo.platform.instance import private_folder


class MailError(RuntimeError):
    """The message could not be handed to the mail server."""


@dataclass
class StoredMessage:
    """One message kept under instance/mail/ (when no SMTP server is configured)."""

    name: str
    to: str
    subject: str
    sent_at: Optional[datetime]
    body: str


def outbox_folder() -> Path:
    return Path(current_app.instance_path) / "mail"


def send(to: str, subject: str, body: str) -> str:
    """Send one plain-text message; returns where it went ('smtp' or the .eml file name)."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="tatenpo.local")
    message.set_content(body)
    server = current_app.config.get("MAIL_SERVER")
    if server:
        try:
            with smtplib.SMTP(server, current_app.config.get("MAIL_PORT", 25), timeout=20) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(str(exc)) from exc
        return "smtp"
    folder = outbox_folder()
    private_folder(folder)  # uploaded files and mails are the shop's data: owner only
    # Time first so a plain listing sorts by when the message was written.
    name = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:8] + ".eml"
    (folder / name).write_bytes(message.as_bytes(policy=policy.SMTP))
    return name


def read(name: str) -> Optional[StoredMessage]:
    """One stored message by file name; None for anything that is not a plain name in the outbox."""
    if "/" in name or "\\" in name or not name.endswith(".eml") or name.startswith("."):
        return None
    path = outbox_folder() / name
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        parsed = BytesParser(policy=policy.default).parse(handle)
    try:
        sent_at = parsedate_to_datetime(parsed["Date"]).astimezone(timezone.utc).replace(tzinfo=None)
    except (TypeError, ValueError):
        sent_at = None
    part = parsed.get_body(preferencelist=("plain",))
    return StoredMessage(
        name=name,
        to=str(parsed["To"] or ""),
        subject=str(parsed["Subject"] or ""),
        sent_at=sent_at,
        body=part.get_content() if part is not None else "",
    )


def outbox(limit: int = 100) -> list[StoredMessage]:
    """The newest stored messages first."""
    folder = outbox_folder()
    if not folder.is_dir():
        return []
    names = sorted((p.name for p in folder.glob("*.eml")), reverse=True)[:limit]
    return [m for m in (read(n) for n in names) if m is not None]
