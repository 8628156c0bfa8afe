"""What the four mall parsers share: folding full-width labels and numbers, JST times, sender checks and
the names of the mails that are not orders (reports, payouts, contact forms, cancellations)."""
from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

from .model import MailEnvelope, NotAnOrder

# The malls print Japan time without an offset (楽天 [日時], Yahoo 注文日時, Amazon 注文日).
JST = timezone(timedelta(hours=9))

# Only digits and the punctuation around labels and numbers are folded; titles keep their full-width text.
_ASCII = str.maketrans(
    "０１２３４５６７８９：，．／－＝＋＊（）［］＃　￥",
    "0123456789:,./-=+*()[]# ¥",
)

NUMBER = r"[0-9][0-9,]*"


def fold(text: str) -> str:
    """Full-width digits, colons, brackets and spaces as ASCII, for matching labels and reading numbers."""
    return text.translate(_ASCII)


def fold_subject(subject: str) -> str:
    """A subject reduced for comparison: NFKC (！→!, （→( …) and no whitespace at all."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", subject))


def to_int(text: str) -> int:
    """'2,200' or '２，２００' as 2200."""
    return int(fold(text).replace(",", "").strip())


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time in Japan as naive UTC."""
    local = datetime(year, month, day, hour, minute, second, tzinfo=JST)
    return local.astimezone(UTC).replace(tzinfo=None)


def utc_date_in_japan(moment: datetime) -> tuple[int, int, int]:
    """The calendar day in Japan of a naive-UTC moment."""
    local = moment.replace(tzinfo=UTC).astimezone(JST)
    return local.year, local.month, local.day


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def in_domains(address: str, domains: tuple[str, ...]) -> bool:
    """The address is at one of the domains or at a subdomain of one."""
    domain = domain_of(address)
    return any(domain == d or domain.endswith("." + d) for d in domains)


# Mails the malls send beside orders, by what their subject says. Checked only after the order subject failed,
# so a word here never turns an order away; the first kind that matches names the reason.
NOTICE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cancellation", ("キャンセル", "取消", "cancel")),
    ("daily-report", ("日報", "朝レポ", "レポート", "速報", "集計", "report", "summary")),
    ("payout-notice", ("振込", "振り込み", "入金", "支払報告", "精算", "売上金", "payout", "payment")),
    ("contact-form", ("問い合わせ", "問合せ", "お問合わせ", "メッセージ", "inquiry", "contact", "message")),
)


def describe(envelope: MailEnvelope) -> str:
    subject = envelope.subject if len(envelope.subject) <= 80 else envelope.subject[:77] + "..."
    forwarded = " (forwarded copy)" if envelope.forwarded else ""
    return f"from {envelope.sender or 'no sender'}, subject {subject!r}{forwarded}"


def notice(mall: str, envelope: MailEnvelope) -> NotAnOrder:
    """A mail from the mall that is not an order, named by its subject."""
    subject = unicodedata.normalize("NFKC", envelope.subject).lower()
    for kind, words in NOTICE_KINDS:
        if any(word in subject for word in words):
            reason = f"{mall}-{kind}" if kind == "cancellation" else kind
            return NotAnOrder(reason, f"{mall} {kind.replace('-', ' ')} {describe(envelope)}")
    return NotAnOrder("not-an-order-subject", f"{mall} mail that is not an order, {describe(envelope)}")


def unknown_sender(mall: str, envelope: MailEnvelope) -> NotAnOrder:
    return NotAnOrder("unknown-sender", f"not a {mall} sender: {describe(envelope)}")
