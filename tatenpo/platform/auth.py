"""Who may see what: the first-run setup guard, login on every page, roles, and slowing down password guessing."""
from __future__ import annotations

from datetime import timedelta
from functools import wraps
from typing import Optional

from flask import abort, current_app, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from tatenpo.models import Role, User, utcnow
from tatenpo.platform.extensions import db, login_manager

# Reachable without any user (first run) or without login.
PUBLIC_ENDPOINTS = {"static", "auth.setup", "auth.login", "health.healthz", "inbound.receive_mail"}

# After this many failures in a row an account waits before the next try: 2 s, 4 s, … up to 15 minutes.
FREE_FAILURES = 5
MAX_DELAY = timedelta(minutes=15)

# A valid hash to compare against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = "scrypt:32768:8:1$lWopV8sxiYMQXAYZ$aa6d99154a934024ba6bf9580b72dfa33bdc02b013c5ae4f692f71eb7106b52173a85b36b7eee13d0d76443f3288d35413a7c71aea856289a81b6dc93277e84d"


class LoginRefused(Exception):
    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


def has_users() -> bool:
    cache = current_app.extensions.setdefault("tatenpo.has_users", {})
    if not cache.get("yes"):
        cache["yes"] = db.session.scalar(select(func.count()).select_from(User)) > 0
    return cache["yes"]


def create_user(email: str, password: str, role: str = Role.STAFF.value, locale: str = "ja") -> User:
    email = email.strip().lower()
    if role not in (Role.STAFF.value, Role.SUPPORT.value):
        raise ValueError(f"unknown role {role!r}")
    if len(password) < 8:
        raise ValueError(str(_l("The password must have at least 8 characters.")))
    if db.session.scalar(select(User).where(User.email == email)):
        raise ValueError(str(_l("A user with this email already exists.")))
    user = User(email=email, role=role, locale=locale)
    user.set_password(password)
    db.session.add(user)
    return user


def _retry_delay(user: User) -> timedelta:
    over = user.failed_logins - FREE_FAILURES
    if over < 0:
        return timedelta(0)
    return min(MAX_DELAY, timedelta(seconds=2 ** (over + 1)))


def authenticate(email: str, password: str) -> User:
    """The user with this email and password; raises LoginRefused with a message otherwise.
    Commits the failure counter, so guessing is slowed down across processes and restarts."""
    user: Optional[User] = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        from werkzeug.security import check_password_hash

        check_password_hash(_DUMMY_HASH, password)
        raise LoginRefused(_l("The email or password is wrong."))
    now = utcnow()
    if user.last_failed_login_at and now < user.last_failed_login_at + _retry_delay(user):
        raise LoginRefused(_l("Too many failed attempts. Wait a moment and try again."))
    if not user.check_password(password):
        user.failed_logins += 1
        user.last_failed_login_at = now
        db.session.commit()
        raise LoginRefused(_l("The email or password is wrong."))
    if user.failed_logins:
        user.failed_logins = 0
        user.last_failed_login_at = None
        db.session.commit()
    return user


def role_required(role: Role):
    """Refuse (403) users without the role; used on the support center's staff-only pages."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role != role.value:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


@login_manager.user_loader
def _load_user(user_id: str) -> Optional[User]:
    return db.session.get(User, int(user_id))


def _guard():
    """Runs before every request: no user yet → setup; not logged in → login."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS:
        if endpoint == "auth.setup" and has_users():
            return redirect(url_for("auth.login"))
        return None
    if not has_users():
        return redirect(url_for("auth.setup"))
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def init_app(app) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    app.before_request(_guard)
