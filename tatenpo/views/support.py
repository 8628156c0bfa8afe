"""サポートセンター: the 「自動受注メール取込・自動在庫同期開始申請」 form (input → confirm → submit), the shop's
list of applications, and for the support role the queue with 設定完了 / 差し戻し."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import case, select
from wtforms import EmailField, SelectChoice, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from tatenpo import malls as mall_registry
from tatenpo.models import ApplicationStatus, Role, SupportApplication
from tatenpo.platform import mail
from tatenpo.platform.auth import role_required
from tatenpo.platform.extensions import db
from tatenpo.setup import support_center
from tatenpo.views.forms import strip

bp = Blueprint("support", __name__)


class AtLeastOne:
    """Required for a group of checkboxes (marks the field ※ like the other required ones)."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        if not field.data:
            raise ValidationError(_l("Choose at least one mall."))


class ApplicationForm(FlaskForm):
    # The application form's fields, in its order (docs/FLOW.md).
    company = StringField(
        _l("Company name"), filters=[strip], validators=[DataRequired(_l("Enter the company name.")), Length(max=200)]
    )
    contact_name = StringField(
        _l("Contact name"), filters=[strip],
        validators=[DataRequired(_l("Enter the contact person's name.")), Length(max=100)],
    )
    contact_email = EmailField(
        _l("Contact email"),
        filters=[strip],
        validators=[Optional(), Email(_l("Enter a valid email address, e.g. tanaka@example.co.jp.")), Length(max=254)],
    )
    malls = SelectMultipleField(
        _l("Malls to sync"),
        choices=[SelectChoice(m, mall_registry.family_name(m)) for m in mall_registry.families()],
        validators=[AtLeastOne()],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    application_type = SelectField(
        _l("Application type"),
        choices=[SelectChoice(t, support_center.APPLICATION_TYPE_LABELS[t]) for t in support_center.APPLICATION_TYPES],
        default=support_center.APPLICATION_TYPE_START,
        validators=[InputRequired(_l("Choose the application type."))],
    )
    inquiry = TextAreaField(_l("Inquiry"), default=support_center.DEFAULT_INQUIRY, validators=[Length(max=2000)])
    note = TextAreaField(_l("Notes"), validators=[Length(max=2000)])


FIELDS = ("company", "contact_name", "contact_email", "malls", "application_type", "inquiry", "note")


class ReturnForm(FlaskForm):
    comment = TextAreaField(
        _l("Reason for returning"), filters=[strip],
        validators=[DataRequired(_l("Enter the reason for returning the application.")), Length(max=2000)],
    )


class CompleteForm(FlaskForm):
    pass


def _is_support() -> bool:
    return current_user.role == Role.SUPPORT.value




@bp.route("/support")
def index():
    pending_first = case((SupportApplication.status == ApplicationStatus.PENDING.value, 0), else_=1)
    applications = db.session.scalars(
        select(SupportApplication).order_by(pending_first, SupportApplication.submitted_at.desc()).limit(200)
    ).all()
    queue = [a for a in applications if a.status == ApplicationStatus.PENDING.value]
    return render_template(
        "support/index.html",
        applications=applications,
        queue=queue,
        is_support=_is_support(),
        messages=mail.outbox(limit=10),
    )


@bp.route("/support/apply", methods=["GET", "POST"])
def apply():
    form = ApplicationForm()
    if request.method == "GET" and request.args.get("from", type=int):
        # Re-applying after 差し戻し: start from the returned application's answers.
        previous = db.session.get(SupportApplication, request.args.get("from", type=int))
        if previous is not None:
            form = ApplicationForm(obj=previous)
    action = request.form.get("action", "confirm")
    if request.method == "POST" and action != "edit" and form.validate_on_submit():
        if action == "submit":
            try:
                application = support_center.apply(
                    company=form.company.data,
                    contact_name=form.contact_name.data,
                    contact_email=form.contact_email.data,
                    malls=form.malls.data,
                    application_type=form.application_type.data,
                    inquiry=form.inquiry.data,
                    note=form.note.data,
                    applicant=current_user._get_current_object(),
                )
            except support_center.ApplicationError as exc:
                db.session.rollback()
                flash(str(exc.message), "error")
            else:
                db.session.commit()
                flash(
                    _(
                        "Your application was sent. Setup usually takes about %(usual)s business days (allow %(allow)s).",
                        usual=support_center.USUAL_BUSINESS_DAYS,
                        allow=support_center.ALLOW_BUSINESS_DAYS,
                    ),
                    "success",
                )
                return redirect(url_for("support.detail", application_id=application.id))
        return render_template("support/confirm.html", form=form)
    return render_template("support/apply.html", form=form)


@bp.route("/support/apply/validate", methods=["POST"])
def validate_field():
    """htmx inline validation: the named field re-rendered with its own errors (nothing is saved)."""
    name = request.args.get("field", "")
    if name not in FIELDS:
        abort(404)
    form = ApplicationForm()
    form.validate()
    for other in FIELDS:
        if other != name:
            form[other].errors = []
    return render_template("support/_field.html", form=form, name=name)


@bp.route("/support/applications/<int:application_id>")
def detail(application_id: int):
    application = db.get_or_404(SupportApplication, application_id)
    return render_template(
        "support/detail.html",
        application=application,
        stores=support_center.stores_covered(application),
        is_support=_is_support(),
        complete_form=CompleteForm(),
        return_form=ReturnForm(),
    )


@bp.route("/support/applications/<int:application_id>/complete", methods=["POST"])
@role_required(Role.SUPPORT)
def complete(application_id: int):
    application = db.get_or_404(SupportApplication, application_id)
    if not CompleteForm().validate_on_submit():
        abort(400)
    return _process(
        application,
        lambda handler: support_center.complete(application, handled_by=handler),
        _("Marked as setup complete. Order-mail addresses were issued."),
    )


@bp.route("/support/applications/<int:application_id>/return", methods=["POST"])
@role_required(Role.SUPPORT)
def return_(application_id: int):
    application = db.get_or_404(SupportApplication, application_id)
    form = ReturnForm()
    if not form.validate_on_submit():
        return (
            render_template(
                "support/detail.html",
                application=application,
                stores=support_center.stores_covered(application),
                is_support=True,
                complete_form=CompleteForm(),
                return_form=form,
            ),
            422,
        )
    return _process(
        application,
        lambda handler: support_center.return_application(application, form.comment.data, handled_by=handler),
        _("Returned to the applicant with your comment."),
    )


def _process(application: SupportApplication, change, done_message: str):
    """Apply a support decision (設定完了 / 差し戻し) in one commit, then tell the applicant."""
    try:
        change(current_user._get_current_object())
    except support_center.ApplicationError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    else:
        db.session.commit()
        flash(done_message, "success")
        _notify(application)
    return redirect(url_for("support.detail", application_id=application.id))


def _notify(application: SupportApplication) -> None:
    # The status change is already committed: a mail problem is reported, never undoes it.
    try:
        where = support_center.notify_applicant(application)
    except mail.MailError as exc:
        flash(_("The applicant could not be notified by email: %(reason)s", reason=str(exc)), "error")
        return
    if where is None:
        flash(_("The application has no email address, so no notification was sent."), "info")


@bp.route("/support/mail")
def outbox():
    return render_template("support/outbox.html", messages=mail.outbox(limit=200))


@bp.route("/support/mail/<name>")
def message(name: str):
    stored = mail.read(name)
    if stored is None:
        abort(404)
    return render_template("support/message.html", message=stored)
