"""ユーザー: the administrator's page of the shop's users — list, add with a role, disable and enable, set a
new password. Disabling or resetting ends the user's sessions at once. Only the administrator gets here
(platform.auth.ACCESS)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField, SelectChoice, SelectField
from wtforms.validators import DataRequired, Email, Length

from tatenpo.models import Role, User, utcnow
from tatenpo.platform import auth
from tatenpo.platform.extensions import db
from tatenpo.platform.passwords import MIN_LENGTH
from tatenpo.views.forms import strip

bp = Blueprint("users", __name__)

ROLE_LABELS = {
    Role.ADMIN.value: _l("Administrator"),
    Role.STAFF.value: _l("Staff"),
    Role.SUPPORT.value: _l("Support center"),
}


class AddUserForm(FlaskForm):
    email = EmailField(_l("Email"), filters=[strip], validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField(_l("Role"), choices=[SelectChoice(k, v) for k, v in ROLE_LABELS.items()],
                       default=Role.STAFF.value)
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=MIN_LENGTH)])


class PasswordResetForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_LENGTH)])


class ActionForm(FlaskForm):
    pass


def _page(form: AddUserForm, status: int = 200):
    users = db.session.scalars(select(User).order_by(User.id)).all()
    return render_template("users/index.html", users=users, form=form, reset_form=PasswordResetForm(),
                           action_form=ActionForm(), role_labels=ROLE_LABELS), status


@bp.route("/users")
def index():
    return _page(AddUserForm())


@bp.route("/users", methods=["POST"])
def add():
    form = AddUserForm()
    if not form.validate_on_submit():
        return _page(form, 422)
    try:
        auth.check_new_password(form.password.data, form.email.data)
    except ValueError as exc:
        form.password.errors = [*form.password.errors, str(exc)]
        return _page(form, 422)
    try:
        user = auth.create_user(form.email.data, form.password.data, role=form.role.data)
    except ValueError as exc:
        form.email.errors = [*form.email.errors, str(exc)]
        return _page(form, 422)
    db.session.commit()
    flash(_("User %(email)s was added.", email=user.email), "success")
    return redirect(url_for("users.index"))


def _other_user(user_id: int) -> User | None:
    """The user to change, or None (with a message) when it is the administrator's own account: locking
    oneself out could leave the shop without an administrator."""
    user = db.get_or_404(User, user_id)
    if user.id == current_user.id:
        flash(_("You cannot change your own account here. Use “Change password” for your password."), "error")
        return None
    return user


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
def disable(user_id: int):
    if not ActionForm().validate_on_submit():
        return redirect(url_for("users.index"))
    user = _other_user(user_id)
    if user is not None and user.disabled_at is None:
        user.disabled_at = utcnow()
        auth.end_sessions(user)
        db.session.commit()
        flash(_("%(email)s can no longer log in; their sessions were logged out.", email=user.email), "success")
    return redirect(url_for("users.index"))


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
def enable(user_id: int):
    if not ActionForm().validate_on_submit():
        return redirect(url_for("users.index"))
    user = _other_user(user_id)
    if user is not None and user.disabled_at is not None:
        user.disabled_at = None
        db.session.commit()
        flash(_("%(email)s can log in again.", email=user.email), "success")
    return redirect(url_for("users.index"))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
def reset_password(user_id: int):
    form = PasswordResetForm()
    user = _other_user(user_id)
    if user is None:
        return redirect(url_for("users.index"))
    problem = None
    if not form.validate_on_submit():
        problem = next(iter(form.password.errors), _("Enter the new password."))
    else:
        try:
            auth.check_new_password(form.password.data, user.email)
        except ValueError as exc:
            problem = str(exc)
    if problem:
        flash(_("The password of %(email)s was not changed: %(reason)s", email=user.email, reason=problem), "error")
        return redirect(url_for("users.index"))
    user.set_password(form.password.data)
    auth.end_sessions(user)
    db.session.commit()
    flash(_("The password of %(email)s was changed; their sessions were logged out.", email=user.email), "success")
    return redirect(url_for("users.index"))
