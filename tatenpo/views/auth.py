"""First-run setup, login, logout and the user's own preferences (language)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from tatenpo.models import Role
from tatenpo.platform import auth
from tatenpo.platform.extensions import db

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


class PreferencesForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=[SelectChoice("ja", "日本語"), SelectChoice("en", "English")])
    submit = SubmitField(_l("Save"))


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would let a phishing link bounce through our login.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("dashboard.index")


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    form = SetupForm()
    if form.validate_on_submit():
        try:
            user = auth.create_user(form.email.data, form.password.data, role=Role.STAFF.value)
        except ValueError as exc:
            form.email.errors.append(str(exc))
        else:
            db.session.commit()
            current_app.extensions.pop("tatenpo.has_users", None)
            login_user(user)
            flash(_("Welcome to Tatenpo. Follow the setup guide to start automatic stock sync."), "success")
            return redirect(url_for("onboarding.index"))
    return render_template("auth/setup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = auth.authenticate(form.email.data, form.password.data)
        except auth.LoginRefused as refused:
            flash(str(refused.message), "error")
        else:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
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
