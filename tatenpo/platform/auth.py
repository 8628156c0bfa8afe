"""Who may see what: the first-run setup guard, login on every page, the roles' map of screens, sessions
that end on the server, and slowing down password guessing.

Roles: the shop's administrator (users, stores and their credentials, and everything staff may), the shop's
staff (stock, imports, orders, listings, sync), and サポートセンター (the support applications only). One
map, ACCESS, says which roles may use each screen; one guard applies it before every request. The shell
(`flask --app app …`) has no login and acts as the administrator.

Guessing is throttled in Redis with atomic counters, per account and address pair (that address waits,
2 s, 4 s, … up to 15 minutes) and per address (a cap over all accounts). An account under attack is
never locked for its owner: a right password from another address still logs in. Unknown emails are
counted and answered exactly like known ones, after the same password hash check.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta
from functools import wraps
from hashlib import sha512
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select, update
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

from tatenpo.models import Role, SupportApplication, User
from tatenpo.platform import passwords
from tatenpo.platform.extensions import db, login_manager
from tatenpo.platform.redis_conn import redis
from tatenpo.platform.web import safe_next

# Reachable without any user (first run) or without login.
PUBLIC_ENDPOINTS = {"static", "auth.setup", "auth.login", "health.healthz", "inbound.receive_mail",
                    "webhooks.shopify"}

ADMIN, STAFF, SUPPORT = Role.ADMIN.value, Role.STAFF.value, Role.SUPPORT.value
EVERYONE = frozenset({ADMIN, STAFF, SUPPORT})
SHOP = frozenset({ADMIN, STAFF})

# Who may use each screen: a blueprint's entry, or an endpoint's own where it differs from its blueprint's.
# A screen missing here is for the administrator only until it is listed.
ACCESS: dict[str, frozenset[str]] = {
    "auth": EVERYONE,  # logout, preferences, the own password
    "dashboard": SHOP,
    "onboarding": SHOP,
    "stock": SHOP,
    "listings": SHOP,
    "orders": SHOP,
    "imports": SHOP,
    "sync": SHOP,
    "settings": frozenset({ADMIN}),  # stores and their credentials
    "authorize": frozenset({ADMIN}),  # the mall's consent flow stores a store's credentials
    "order_routes": frozenset({ADMIN}),  # a store's order routes are part of its settings
    "users": frozenset({ADMIN}),
    "support": SHOP,  # applying is the shop's
    "support.index": EVERYONE,
    "support.detail": EVERYONE,
    "support.outbox": EVERYONE,  # the notifications sent about applications
    "support.message": EVERYONE,
    "support.complete": frozenset({SUPPORT}),
    "support.return_": frozenset({SUPPORT}),
}

# Decisions on an application, which its own applicant never takes.
DECISION_ENDPOINTS = {"support.complete", "support.return_"}

# Per account and address: this many failures free, then that address waits 2 s, 4 s, … up to MAX_DELAY.
FREE_FAILURES = 5
MAX_DELAY = timedelta(minutes=15)
PAIR_WINDOW = timedelta(minutes=15)  # an account and address pair's failures are forgotten this long after the last
# Per account, from every address: past this many failures in the window each address gets one free guess.
ACCOUNT_ALERT = 20
ACCOUNT_WINDOW = timedelta(hours=1)
# Per address, over every account (password spraying): attempts in a fixed window.
ADDRESS_LIMIT = 30
ADDRESS_WINDOW = timedelta(minutes=10)

_SESSION_VERSION = "tatenpo_sv"
_KEY = "tatenpo:login:"


class WrongPassword(ValueError):
    """The current password, asked before a change, is not the user's."""


class LoginRefused(Exception):
    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


# --- users --------------------------------------------------------------------------------------------------

def has_users() -> bool:
    cache = current_app.extensions.setdefault("tatenpo.has_users", {})
    if not cache.get("yes"):
        cache["yes"] = db.session.scalar(select(func.count()).select_from(User)) > 0
    return cache["yes"]


def check_new_password(password: str, email: str | None = None) -> None:
    """Raise ValueError with the reason when the password breaks the rules (platform.passwords)."""
    problem = passwords.problem(password, email)
    if problem:
        raise ValueError(problem)


def create_user(email: str, password: str, role: str = ADMIN, locale: str = "ja") -> User:
    email = email.strip().lower()
    if role not in EVERYONE:
        raise ValueError(f"unknown role {role!r}")
    check_new_password(password, email)
    if db.session.scalar(select(User).where(User.email == email)):
        raise ValueError(str(_l("A user with this email already exists.")))
    user = User(email=email, role=role, locale=locale, session_version=0)
    user.set_password(password)
    db.session.add(user)
    return user


def end_sessions(user: User) -> None:
    """Every session of this user stops working at its next request (logout, password change, disable).
    The caller commits."""
    db.session.execute(
        update(User).where(User.id == user.id).values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(user, ["session_version"])


def start_session(user: User) -> None:
    """Log this user in on this browser, bound to the user's current session version."""
    login_user(user, force=True)
    session[_SESSION_VERSION] = user.session_version


def change_password(user: User, current: str, new: str) -> None:
    """Raise ValueError with the reason; on success the other sessions end and this one continues. The
    caller commits."""
    if not user.check_password(current):
        raise WrongPassword(str(_l("The current password is wrong.")))
    check_new_password(new, user.email)
    user.set_password(new)
    end_sessions(user)
    if current_user.is_authenticated and current_user.id == user.id:
        session[_SESSION_VERSION] = user.session_version


def logout() -> None:
    """Log out here and everywhere: a copied session cookie stops working too."""
    if current_user.is_authenticated:
        end_sessions(current_user._get_current_object())
        db.session.commit()
    logout_user()
    session.pop(_SESSION_VERSION, None)


# --- roles --------------------------------------------------------------------------------------------------

def roles_for(endpoint: str) -> frozenset[str]:
    if endpoint in ACCESS:
        return ACCESS[endpoint]
    return ACCESS.get(endpoint.rpartition(".")[0], frozenset({ADMIN}))


def may(endpoint: str, user=None) -> bool:
    """Whether the user (the current one by default) may use this endpoint."""
    user = current_user if user is None else user
    if endpoint in PUBLIC_ENDPOINTS:
        return True
    return bool(user and user.is_authenticated and user.role in roles_for(endpoint))


def home_endpoint(user=None) -> str:
    """Where a user lands after login and on "back to the top": the support center for support users."""
    user = current_user if user is None else user
    return "support.index" if user.role == SUPPORT else "dashboard.index"


def landing(target: str | None, user: User) -> str:
    """After login: `target` when it is a safe path this user may open, else the user's home page."""
    home = url_for(home_endpoint(user))
    path = safe_next(target, home)
    if path == home:
        return home
    try:
        endpoint, _args = current_app.url_map.bind("").match(urlsplit(path).path, method="GET")
    except HTTPException:
        return home
    return path if may(endpoint, user) else home


def role_required(role: Role):
    """Refuse (403) users without the role; a second lock behind ACCESS on the decisions of support."""

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


# --- guessing -----------------------------------------------------------------------------------------------

_dummy_hash: list[str] = []


def _dummy_check(password: str) -> None:
    # Unknown email: the same hash work as a real check, so the answer's timing does not tell.
    if not _dummy_hash:
        _dummy_hash.append(generate_password_hash("not a real password, only for timing"))
    check_password_hash(_dummy_hash[0], password)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _keys(email: str, address: str) -> dict[str, str]:
    account = _digest(email)
    pair = _digest(f"{email}\n{address}")
    return {
        "account": f"{_KEY}account:{account}",
        "pair": f"{_KEY}pair:{pair}",
        "gate": f"{_KEY}gate:{pair}",
        "address": f"{_KEY}address:{_digest(address)}",
    }


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def _delay(failures: int, free: int) -> int:
    return min(_seconds(MAX_DELAY), 2 ** max(1, failures - free + 1))


def counts(email: str, address: str) -> dict[str, int]:
    """The throttle's counters for an email and address: failures (and attempts under way) per pair, per
    account, and attempts per address."""
    keys = _keys(email.strip().lower(), address)
    values = redis().mget(keys["pair"], keys["account"], keys["address"])
    return {name: int(v or 0) for name, v in zip(("pair", "account", "address"), values)}


def _admit(keys: dict[str, str]) -> None:
    """Reserve this attempt in the counters before the password is checked, so parallel guesses are all
    counted; raise LoginRefused when this address must wait."""
    r = redis()
    pipe = r.pipeline()
    # A fixed window for the address (set once, then counted), so "wait N seconds" holds.
    pipe.set(keys["address"], 0, ex=_seconds(ADDRESS_WINDOW), nx=True)
    pipe.incr(keys["address"])
    pipe.ttl(keys["address"])
    pipe.incr(keys["pair"])
    pipe.expire(keys["pair"], _seconds(PAIR_WINDOW))
    pipe.get(keys["account"])
    _, from_address, address_ttl, pair, _, account = pipe.execute()
    if from_address > ADDRESS_LIMIT:
        r.decr(keys["pair"])
        raise LoginRefused(_l("Too many attempts from your address. Wait %(seconds)s seconds and try again.",
                              seconds=max(1, address_ttl)))
    free = FREE_FAILURES if int(account or 0) < ACCOUNT_ALERT else 1
    if pair > free and not r.set(keys["gate"], 1, nx=True, ex=_delay(pair - 1, free)):
        # Waiting: this attempt never reaches the password, so it is not a failure.
        pipe = r.pipeline()
        pipe.decr(keys["pair"])
        pipe.decr(keys["address"])
        pipe.execute()
        raise LoginRefused(_l("Too many failed attempts. Wait a moment and try again."))


def _failed(keys: dict[str, str]) -> None:
    r = redis()
    pipe = r.pipeline()
    pipe.incr(keys["account"])
    pipe.expire(keys["account"], _seconds(ACCOUNT_WINDOW))
    pipe.get(keys["pair"])
    account, _, pair = pipe.execute()
    free = FREE_FAILURES if account < ACCOUNT_ALERT else 1
    if int(pair or 0) >= free:
        r.set(keys["gate"], 1, ex=_delay(int(pair), free))


def _succeeded(keys: dict[str, str]) -> None:
    pipe = redis().pipeline()
    pipe.delete(keys["pair"], keys["gate"])
    pipe.decr(keys["address"])
    pipe.execute()


def client_address() -> str:
    """The client's address: the socket's peer, or with TRUST_PROXY the proxy's X-Forwarded-For (ProxyFix
    rewrites remote_addr then). A header a client sends itself is never believed otherwise."""
    return request.remote_addr or "unknown"


def authenticate(email: str, password: str, address: str | None = None) -> User:
    """The user with this email and password; raises LoginRefused with a message otherwise. Unknown emails
    and disabled users are counted and timed like wrong passwords."""
    email = email.strip().lower()
    keys = _keys(email, address or client_address())
    _admit(keys)
    user: User | None = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        _dummy_check(password)
        _failed(keys)
        raise LoginRefused(_l("The email or password is wrong."))
    if not user.check_password(password):
        _failed(keys)
        raise LoginRefused(_l("The email or password is wrong."))
    _succeeded(keys)
    if not user.is_active:
        raise LoginRefused(_l("This account is disabled. Ask the shop's administrator."))
    return user


# --- the guard ----------------------------------------------------------------------------------------------

@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id))
    # A disabled user, or a session from before a logout or password change, is logged out.
    if user is None or not user.is_active or session.get(_SESSION_VERSION) != user.session_version:
        return None
    return user


def _session_identifier() -> str:
    # Flask-Login's own reads X-Forwarded-For whatever sent it; remote_addr follows ProxyFix (TRUST_PROXY).
    base = f"{request.remote_addr}|{request.headers.get('User-Agent')}"
    return sha512(base.encode("utf-8")).hexdigest()


def _login_again():
    if request.headers.get("HX-Request") == "true":
        # An htmx fragment must not be replaced by the login page: the browser goes there, and comes back
        # to the page the user was on.
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        back = safe_next(current.path + ("?" + current.query if current.query else ""), "")
        flash(login_manager.login_message, login_manager.login_message_category)
        response = current_app.response_class(status=401)
        response.headers["HX-Redirect"] = url_for("auth.login", next=back) if back else url_for("auth.login")
        return response
    return login_manager.unauthorized()


def _guard():
    """Runs before every request: no user yet → setup; not logged in → login; the role may not → 403."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS:
        if endpoint == "auth.setup" and has_users():
            return redirect(url_for("auth.login"))
        return None
    if not has_users():
        return redirect(url_for("auth.setup"))
    if not current_user.is_authenticated:
        return _login_again()
    if not endpoint:
        return None  # no such page: 404 or 405 follows
    if current_user.role not in roles_for(endpoint):
        abort(403)
    if endpoint in DECISION_ENDPOINTS:
        application = db.session.get(SupportApplication, (request.view_args or {}).get("application_id", 0))
        if application is not None and application.applicant_id == current_user.id:
            abort(403)
    return None


def init_app(app) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager._session_identifier_generator = _session_identifier
    app.before_request(_guard)

    @app.context_processor
    def _roles():
        return {"may": may, "home_url": lambda: url_for(home_endpoint()) if current_user.is_authenticated
                else url_for("auth.login")}
