"""First-run setup, login, logout, and the user's own preferences (language) and password."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from tatenpo.models import Role
from tatenpo.platform import auth
from tatenpo.platform.extensions import db
from tatenpo.platform.passwords import MIN_LENGTH

bp = Blueprint("auth", __name__)


class SetupForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=8)])
    confirm = PasswordField(
        _l("Password (again)"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )
    submit = SubmitField(_l("Create administrator"))


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    submit = SubmitField(_l("Log in"))


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_LENGTH)])
    confirm = PasswordField(
        _l("New password (again)"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )
    submit = SubmitField(_l("Change password"))


class PreferencesForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=[SelectChoice("ja", "日本語"), SelectChoice("en", "English")])
    submit = SubmitField(_l("Save"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    form = SetupForm()
    if form.validate_on_submit():
        try:
            auth.check_new_password(form.password.data, form.email.data)
        except ValueError as exc:
            form.password.errors = [*form.password.errors, str(exc)]
            return render_template("auth/setup.html", form=form)
        try:
            user = auth.create_user(form.email.data, form.password.data, role=Role.ADMIN.value)
        except ValueError as exc:
            form.email.errors = [*form.email.errors, str(exc)]
        else:
            db.session.commit()
            current_app.extensions.pop("tatenpo.has_users", None)
            auth.start_session(user)
            flash(_("Welcome to Tatenpo. Follow the setup guide to start automatic stock sync."), "success")
            return redirect(url_for("onboarding.index"))
    return render_template("auth/setup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for(auth.home_endpoint()))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = auth.authenticate(form.email.data, form.password.data)
        except auth.LoginRefused as refused:
            flash(str(refused.message), "error")
        else:
            auth.start_session(user)
            return redirect(auth.landing(request.args.get("next"), user))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    auth.logout()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/preferences", methods=["GET", "POST"])
@login_required
def preferences():
    form = PreferencesForm(locale=current_user.locale)
    if form.validate_on_submit():
        current_user.locale = form.locale.data
        db.session.commit()
        # Flash after the commit so the message appears in the newly chosen language.
        from flask_babel import force_locale, refresh

        refresh()
        with force_locale(form.locale.data):
            flash(_("Saved."), "success")
        return redirect(url_for("auth.preferences"))
    return render_template("auth/preferences.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    """The user's own password: the current one first, so a borrowed session cannot take the account."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            auth.change_password(current_user._get_current_object(), form.current.data, form.password.data)
        except auth.WrongPassword as exc:
            db.session.rollback()
            form.current.errors = [*form.current.errors, str(exc)]
        except ValueError as exc:
            db.session.rollback()
            form.password.errors = [*form.password.errors, str(exc)]
        else:
            db.session.commit()
            flash(_("Your password was changed. Other sessions were logged out."), "success")
            return redirect(url_for("auth.password"))
    return render_template("auth/password.html", form=form)
