"""資格情報の有効期限: the one credential of a store that the mall lets expire (楽天's licenseKey after 90 days,
Yahoo!'s refresh token after 4 weeks, Amazon's seller authorisation after 365 days — each connector's
`credential_lifetime`, sources in docs/malls/*.md). We remember when it was entered or renewed and when it
expires, list the stores whose credential expires soon, and tell which reminder (14, 7, 1 day(s) before) is due,
so syncs never stop silently. Dates are naive UTC like every time in the models; a date the shop enters is a
Japan calendar day (the mall's screens show JST). Nothing here commits: the caller does.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import select

from tatenpo import malls
from tatenpo.malls.base import HINT_LOGIN, CredentialLifetime, MallError
from tatenpo.models import Store, utcnow
from tatenpo.platform.extensions import db

# Reminders go this many days before the expiry, each once per expiry date (the mails: credential_reminders).
REMINDER_DAYS = (14, 7, 1)
# Pages show what expires within this many days (the first reminder), and what has expired.
SOON_DAYS = REMINDER_DAYS[0]
# A failed call that means "the expiring credential has expired" carries this code (SyncAttempt.error_code).
EXPIRED_CODE = "tatenpo:credential-expired"
# What a token endpoint answers for a refresh token that expired or was revoked (RFC 6749 §5.2; Yahoo! ID連携 and
# Login with Amazon alike: docs/malls/yahoo.md, docs/malls/amazon.md).
EXPIRED_TOKEN_REPLIES = {"invalid_grant"}
# The malls' screens give the day, in Japan time; a key "valid until 3/31" works through that day.
MALL_ZONE = ZoneInfo("Asia/Tokyo")


def lifetime(mall: str) -> Optional[CredentialLifetime]:
    """The mall's rule for its expiring credential, or None when nothing expires."""
    return malls.mall(mall).credential_lifetime


def rule_expiry(mall: str, renewed_at: datetime) -> Optional[datetime]:
    """When a credential of `mall` entered at `renewed_at` expires by the mall's rule (None: it does not)."""
    rule = lifetime(mall)
    return renewed_at + timedelta(days=rule.days) if rule else None


def note_renewal(store: Store, *, expires_at: Optional[datetime] = None, now: Optional[datetime] = None) -> None:
    """The store's expiring credential was entered or renewed now. `expires_at` is the date the mall returned (an
    OAuth answer, the date RMS shows), else the mall's rule applies; for a mall whose credential does not expire
    the expiry stays unknown (None). Any reminder already mailed belongs to the old credential: it is forgotten.
    Aware datetimes are converted to naive UTC. Does not commit."""
    now = _naive_utc(now) if now else utcnow()
    store.credentials_renewed_at = now
    store.credentials_expire_at = _naive_utc(expires_at) if expires_at else rule_expiry(store.mall, now)
    store.credentials_reminded_days = None


def renews(mall: str, entered: dict) -> bool:
    """Whether the credential values just entered (non-empty ones; empty secrets keep the stored value) renew the
    expiring credential: the one the mall's rule names, or for a mall without one any secret (a visible field such
    as the shop domain comes back with every save of the form)."""
    rule = lifetime(mall)
    if rule is None:
        return any(entered.get(f.key) for f in malls.credential_fields(mall) if f.secret)
    return bool(entered.get(rule.field))


def set_expiry(store: Store, expires_on: Optional[date]) -> None:
    """The shop typed the expiry date the mall shows (or cleared it): the credential works through that day in
    Japan time. A new date restarts the reminders. Does not commit."""
    new = end_of_day(expires_on) if expires_on else None
    if new != store.credentials_expire_at:
        store.credentials_expire_at = new
        store.credentials_reminded_days = None


def today(now: Optional[datetime] = None) -> date:
    """Today in Japan, the calendar the malls' dates are in."""
    return (now or utcnow()).replace(tzinfo=timezone.utc).astimezone(MALL_ZONE).date()


def end_of_day(day: date) -> datetime:
    """The last moment of `day` in Japan, as naive UTC."""
    local = datetime.combine(day + timedelta(days=1), time.min, tzinfo=MALL_ZONE)
    return local.astimezone(timezone.utc).replace(tzinfo=None) - timedelta(seconds=1)


def expiry_day(store: Store) -> Optional[date]:
    """The expiry as the Japan calendar day the mall would show (for the form and the mails)."""
    if not store.credentials_expire_at:
        return None
    return store.credentials_expire_at.replace(tzinfo=timezone.utc).astimezone(MALL_ZONE).date()


def suggested_expiry_day(mall: str, now: Optional[datetime] = None) -> Optional[date]:
    """The day the form pre-fills for a credential entered now: the mall's rule (None: nothing expires)."""
    expiry = rule_expiry(mall, now or utcnow())
    return expiry.replace(tzinfo=timezone.utc).astimezone(MALL_ZONE).date() if expiry else None


@dataclass(frozen=True)
class Expiry:
    """One store's expiring credential as the pages and mails show it."""

    store: Store
    expires_at: datetime
    days_left: int  # whole days until expiry, rounded up (0 or less: expired)

    @property
    def expired(self) -> bool:
        return self.days_left <= 0

    @property
    def expires_on(self) -> date:
        return self.expires_at.replace(tzinfo=timezone.utc).astimezone(MALL_ZONE).date()

    @property
    def credential_label(self):
        """The credential's name as the settings form shows it (e.g. RMS licenseKey)."""
        rule = lifetime(self.store.mall)
        fields = {f.key: f.label for f in malls.credential_fields(self.store.mall)}
        return fields.get(rule.field, rule.field) if rule else ""

    @property
    def renew_at(self):
        rule = lifetime(self.store.mall)
        return rule.renew_at if rule else ""


def days_left(expires_at: datetime, now: datetime) -> int:
    """Whole days until `expires_at`, rounded up: 10 days and an hour left is 11, an hour left is 1, past is ≤ 0."""
    seconds = (expires_at - now).total_seconds()
    if seconds <= 0:
        return int(seconds // 86400)  # -0.5 day → -1; exactly expired → 0
    return -int(-seconds // 86400)


def expiry_of(store: Store, now: Optional[datetime] = None) -> Optional[Expiry]:
    if store.credentials_expire_at is None or lifetime(store.mall) is None:
        return None
    now = now or utcnow()
    return Expiry(store, store.credentials_expire_at, days_left(store.credentials_expire_at, now))


def is_expired(store: Store, now: Optional[datetime] = None) -> bool:
    expiry = expiry_of(store, now)
    return bool(expiry and expiry.expired)


def expiring(now: Optional[datetime] = None, within_days: int = SOON_DAYS) -> list[Expiry]:
    """Stores whose credential has expired or expires within `within_days`, soonest first."""
    now = now or utcnow()
    horizon = now + timedelta(days=within_days)
    stores = db.session.scalars(
        select(Store).where(Store.credentials_expire_at.is_not(None), Store.credentials_expire_at <= horizon)
        .order_by(Store.credentials_expire_at, Store.id)
    )
    return [expiry for expiry in (expiry_of(store, now) for store in stores) if expiry]


def due_reminder(store: Store, now: Optional[datetime] = None) -> Optional[int]:
    """The reminder (14, 7 or 1 days before) to mail now, or None. Only the smallest threshold reached goes: a
    credential first entered 5 days before expiry gets the 7-day mail, not the 14-day one too. An expired
    credential gets none (the sync shows ✗ and the pages say so)."""
    expiry = expiry_of(store, now)
    if expiry is None or expiry.expired:
        return None
    reached = [days for days in REMINDER_DAYS if expiry.days_left <= days]
    if not reached:
        return None
    threshold = min(reached)
    if store.credentials_reminded_days is not None and store.credentials_reminded_days <= threshold:
        return None
    return threshold


def mark_reminded(store: Store, threshold: int) -> None:
    store.credentials_reminded_days = threshold


def explain(store: Store, error: MallError, now: Optional[datetime] = None) -> MallError:
    """A failed call in the shop's words when it means the expiring credential has expired: the mall refused the
    login after the expiry we recorded (RMS answers an expired licenseKey like a wrong one, ES01-01:
    docs/malls/rakuten.md), or the token endpoint refused the refresh token. Says which credential, since when,
    and where to renew it; any other error comes back as it was."""
    rule = lifetime(store.mall)
    if rule is None or error.transient or error.hint != HINT_LOGIN:
        return error
    past = is_expired(store, now)
    refused = rule.field == "refresh_token" and error.code in EXPIRED_TOKEN_REPLIES
    if not (past or refused):
        return error
    return MallError(expired_message(store), transient=False, hint=HINT_LOGIN, code=EXPIRED_CODE)


def expired_message(store: Store) -> str:
    """✗ reason for a push refused because the store's credential expired, with the way to renew it."""
    rule = lifetime(store.mall)
    fields = {f.key: f.label for f in malls.credential_fields(store.mall)}
    day = expiry_day(store)
    values = dict(credential=fields.get(rule.field, rule.field), renew_at=rule.renew_at, store=store.name)
    if day:
        return _("The %(credential)s of “%(store)s” expired on %(date)s. Renew it (%(renew_at)s), then enter the new "
                 "one in System settings › EC sites › %(store)s.", date=day.strftime("%Y/%m/%d"), **values)
    return _("The %(credential)s of “%(store)s” has expired or was revoked. Renew it (%(renew_at)s), then enter the "
             "new one in System settings › EC sites › %(store)s.", **values)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
