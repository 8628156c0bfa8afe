"""The サポートセンター's applications: 申請中 → 設定完了 (or 差し戻し with a comment).

Automatic sync to a mall starts only once an application covering that mall is 設定完了.
"""
from __future__ import annotations

import secrets
from typing import Optional

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from tatenpo import malls as mall_registry
from tatenpo.models import ApplicationStatus, Store, SupportApplication, User, utcnow
from tatenpo.orders import intake
from tatenpo.platform import mail
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory

APPLICATION_TYPE_START = "自動受注メール取込・自動在庫同期を開始する"
APPLICATION_TYPES = [
    APPLICATION_TYPE_START,
    "自動受注メール取込・自動在庫同期の設定を変更する",
    "自動受注メール取込・自動在庫同期を停止する",
]
DEFAULT_INQUIRY = "自動受注メール取込みアドレスの申請"


class ApplicationError(ValueError):
    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


def apply(
    *,
    company: str,
    contact_name: str,
    malls: list[str],
    application_type: str = APPLICATION_TYPE_START,
    contact_email: Optional[str] = None,
    inquiry: Optional[str] = DEFAULT_INQUIRY,
    note: Optional[str] = None,
    applicant: Optional[User] = None,
) -> SupportApplication:
    if not (company or "").strip():
        raise ApplicationError(_l("Enter the company name."))
    if not (contact_name or "").strip():
        raise ApplicationError(_l("Enter the contact person's name."))
    chosen = [m for m in malls if m]
    # One applies for a mall, not a route: 楽天市場 covers the API and the FTP route alike.
    unknown = [m for m in chosen if m not in mall_registry.families()]
    if unknown:
        raise ApplicationError(_l("Unknown mall: %(malls)s", malls=", ".join(unknown)))
    if not chosen:
        raise ApplicationError(_l("Choose at least one mall."))
    if application_type not in APPLICATION_TYPES:
        raise ApplicationError(_l("Choose the application type."))
    application = SupportApplication(
        company=company.strip(),
        contact_name=contact_name.strip(),
        contact_email=(contact_email or "").strip() or None,
        malls=chosen,
        application_type=application_type,
        inquiry=inquiry,
        note=note,
        applicant_id=applicant.id if applicant else None,
        status=ApplicationStatus.PENDING.value,
    )
    db.session.add(application)
    db.session.flush()
    return application


def complete(application: SupportApplication, handled_by: Optional[User] = None) -> list[Store]:
    """設定完了: marks the application done and issues an order-mail address to each store of its malls
    that has none yet. Returns the stores that got an address."""
    if application.status == ApplicationStatus.COMPLETED.value:
        raise ApplicationError(_l("This application is already completed."))
    application.status = ApplicationStatus.COMPLETED.value
    application.completed_at = utcnow()
    application.handled_by_id = handled_by.id if handled_by else None
    application.comment = None
    issued = []
    covered = set()
    for store in db.session.scalars(select(Store).order_by(Store.id)):
        if mall_registry.family_of(store.mall) in application.malls:
            covered.add(store.id)
        if mall_registry.family_of(store.mall) in application.malls and not store.order_mail_address:
            store.order_mail_address = _order_mail_address(store)
            if not store.inbound_token:  # the HTTP door for an inbound-mail service, ready like the address
                intake.issue_token(store)
            issued.append(store)
    # Sync to these malls may start now: what waited for the application is pushed at once after the commit.
    db.session.info.setdefault(inventory.STORES_CHANGED, set()).update(covered)
    db.session.info[inventory.URGENT] = True
    db.session.flush()
    return issued


def return_application(application: SupportApplication, comment: str, handled_by: Optional[User] = None) -> None:
    """差し戻し: back to the applicant with the reason."""
    if not (comment or "").strip():
        raise ApplicationError(_l("Enter the reason for returning the application."))
    if application.status == ApplicationStatus.COMPLETED.value:
        raise ApplicationError(_l("This application is already completed."))
    application.status = ApplicationStatus.RETURNED.value
    application.comment = comment.strip()
    application.handled_by_id = handled_by.id if handled_by else None
    db.session.flush()


def covers(mall: str) -> bool:
    """Is automatic sync to this mall allowed: has an application covering it been 設定完了?"""
    family = mall_registry.family_of(mall)
    for malls in db.session.scalars(
        select(SupportApplication.malls).where(SupportApplication.status == ApplicationStatus.COMPLETED.value)
    ):
        if family in (malls or []):
            return True
    return False


def _order_mail_address(store: Store) -> str:
    domain = current_app.config["ORDER_MAIL_DOMAIN"]
    return f"order-{store.id}-{secrets.token_hex(4)}@{domain}"


STATUS_LABELS = {
    ApplicationStatus.PENDING.value: _l("Applied"),
    ApplicationStatus.COMPLETED.value: _l("Setup complete"),
    ApplicationStatus.RETURNED.value: _l("Returned"),
}

# The stored value stays the form's Japanese wording (docs/FLOW.md); this is only how it reads in the chosen language.
APPLICATION_TYPE_LABELS = {
    APPLICATION_TYPES[0]: _l("Start automatic order-mail intake and automatic stock sync"),
    APPLICATION_TYPES[1]: _l("Change the automatic order-mail intake and stock sync settings"),
    APPLICATION_TYPES[2]: _l("Stop automatic order-mail intake and automatic stock sync"),
}

# How long setup takes (docs/FLOW.md, step 1): about 2 business days, allow 5 when support is busy.
USUAL_BUSINESS_DAYS = 2
ALLOW_BUSINESS_DAYS = 5


def stores_covered(application: SupportApplication) -> list[Store]:
    """The stores on the application's malls, with the order-mail address each was issued (if any)."""
    return [
        store
        for store in db.session.scalars(select(Store).order_by(Store.id))
        if mall_registry.family_of(store.mall) in (application.malls or [])
    ]


def recipient(application: SupportApplication) -> Optional[str]:
    """Where to tell the applicant: the contact email on the form, else the applicant's login email."""
    if application.contact_email:
        return application.contact_email
    if application.applicant is not None:
        return application.applicant.email
    return None


def notify_applicant(application: SupportApplication) -> Optional[str]:
    """Tell the applicant the application's new status (設定完了 or 差し戻し) in their language.
    Returns where the message went, or None when there is no address to write to."""
    to = recipient(application)
    if not to:
        return None
    locale = application.applicant.locale if application.applicant is not None else "ja"
    with force_locale(locale or "ja"):
        if application.status == ApplicationStatus.COMPLETED.value:
            subject = _("Your application is complete: automatic stock sync can start")
        else:
            subject = _("Your application was returned: please check the comment")
        body = render_template(
            "support/mail_status.html", application=application, stores=stores_covered(application),
        )
    return mail.send(to, subject, body)
