"""The daily reminder of expiring mall credentials: 14, 7 and 1 day(s) before a store's credential expires, a mail
to the shop's administrators (they alone may change a store's credentials: platform/auth.py ACCESS), each in their
own language, through platform/mail.py (SMTP, or an .eml file in the outbox). Each reminder goes once per expiry:
the store row is claimed with a conditional UPDATE before the mail goes, so two checks on the same day (or at the
same moment) send one mail, and a mail that could not be sent gives the claim back for the next check.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from tatenpo import malls
from tatenpo.models import Role, Store, User, utcnow
from tatenpo.platform import mail
from tatenpo.platform.extensions import db
from tatenpo.setup import credential_dates

log = logging.getLogger(__name__)


@dataclass
class ReminderRun:
    sent: list[dict] = field(default_factory=list)  # {"store", "days", "to"} per mail handed over
    failed: list[dict] = field(default_factory=list)  # {"store", "to", "error"}: retried by the next check

    def as_dict(self) -> dict:
        return {"sent": self.sent, "failed": self.failed}


def recipients() -> list[User]:
    """The administrators who can log in: they are the ones who can renew a store's credentials."""
    return list(db.session.scalars(
        select(User).where(User.role == Role.ADMIN.value, User.disabled_at.is_(None)).order_by(User.id)
    ))


def send_due(now: Optional[datetime] = None) -> ReminderRun:
    """Mail every reminder due now; commits each store's claim before its mail goes."""
    now = now or utcnow()
    run = ReminderRun()
    admins = recipients()
    if not admins:
        log.warning("credential reminders: no active administrator to mail")
        return run
    for expiry in credential_dates.expiring(now, within_days=credential_dates.REMINDER_DAYS[0]):
        store = expiry.store
        threshold = credential_dates.due_reminder(store, now)
        if threshold is None or not _claim(store, threshold):
            continue
        delivered = False
        for user in admins:
            try:
                mail.send(user.email, *_message(expiry, user.locale))
            except mail.MailError as exc:
                log.warning("credential reminder for store %s to %s failed: %s", store.id, user.email, exc)
                run.failed.append({"store": store.id, "to": user.email, "error": str(exc)})
                continue
            delivered = True
            run.sent.append({"store": store.id, "days": threshold, "to": user.email})
        if not delivered:
            _release(store, threshold)
    return run


def _claim(store: Store, threshold: int) -> bool:
    """Take the reminder for this store (True) unless another check took it, or a smaller one, first."""
    claimed = db.session.execute(
        update(Store)
        .where(Store.id == store.id, Store.credentials_expire_at == store.credentials_expire_at,
               or_(Store.credentials_reminded_days.is_(None), Store.credentials_reminded_days > threshold))
        .values(credentials_reminded_days=threshold)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()
    return claimed


def _release(store: Store, threshold: int) -> None:
    db.session.execute(
        update(Store).where(Store.id == store.id, Store.credentials_reminded_days == threshold)
        .values(credentials_reminded_days=None).execution_options(synchronize_session=False)
    )
    db.session.commit()


def _message(expiry: credential_dates.Expiry, locale: Optional[str]) -> tuple[str, str]:
    """(subject, body) in the reader's language."""
    store = expiry.store
    with force_locale(locale or "ja"):
        values = dict(mall=malls.family_name(malls.family_of(store.mall)), credential=str(expiry.credential_label),
                      date=expiry.expires_on.strftime("%Y/%m/%d"), days=expiry.days_left)
        subject = _("[Tatenpo] %(mall)s “%(store)s”: the %(credential)s expires in %(days)s day(s) (%(date)s)",
                    store=store.name, **values)
        body = render_template("settings/mail_credential_expiry.html", expiry=expiry, store=store, **values)
    return subject, body
