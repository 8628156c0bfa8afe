"""認可ボタン: from a store's settings page to the mall's consent page and back (tatenpo/setup/authorization.py).

Start (a link carrying the session's CSRF token: a form could not lead to another site, the pages' CSP says
form-action 'self', which browsers apply to a form's redirects too) → the mall's consent page. Callback (GET, the URL the shop registers
with the mall: /authorize/<mall>/callback) → the answer checked, the code exchanged, the tokens stored, and the
store's settings page with what happened. The started authorizations live in the shop's session only.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from tatenpo import malls
from tatenpo.models import Store
from tatenpo.platform.extensions import db
from tatenpo.setup import authorization

bp = Blueprint("authorize", __name__)

SESSION_KEY = "tatenpo_authorizations"


def callback_url(mall: str) -> str:
    """Where the mall sends the shop back: the URL to register with the mall (shown on the settings page)."""
    return url_for("authorize.callback", mall=mall, _external=True)


def _pending() -> dict:
    return dict(session.get(SESSION_KEY) or {})


def _keep(pending: dict) -> None:
    session[SESSION_KEY] = pending


def _settings(store_id) -> str:
    if store_id is None:
        return url_for("settings.stores")
    return url_for("settings.edit_store", store_id=store_id) + "#authorize"


@bp.get("/settings/stores/<int:store_id>/authorize")
def start(store_id: int):
    store = db.get_or_404(Store, store_id)
    try:
        validate_csrf(request.args.get("csrf_token", ""))
    except (ValidationError, CSRFError):
        flash(_("This authorization link has expired. Press the button again."), "error")
        return redirect(_settings(store.id))
    pending = _pending()
    try:
        url = authorization.begin(store, current_user.id, callback_url(store.mall), pending)
    except authorization.AuthorizationError as exc:
        flash(str(exc.message), "error")
        return redirect(_settings(store.id))
    _keep(pending)
    return redirect(url, code=303)


@bp.get("/authorize/<mall>/callback")
def callback(mall: str):
    if mall not in malls.keys():
        abort(404)
    pending = _pending()
    try:
        store = authorization.complete(
            mall, request.args.to_dict(), current_user.id, callback_url(mall), pending,
            timeout=float(current_app.config["MALL_TIMEOUT_SECONDS"]))
    except authorization.AuthorizationError as exc:
        db.session.rollback()
        _keep(pending)
        flash(str(exc.message), "error")
        return redirect(_settings(exc.store_id))
    db.session.commit()
    _keep(pending)
    flash(_("%(mall)s authorized Tatenpo for “%(name)s”. The new tokens were saved encrypted; the next push uses "
            "them.", mall=malls.label(store.mall), name=store.name), "success")
    return redirect(_settings(store.id))

