"""The door of Shopify's order webhooks: POST /webhooks/shopify/<token>, the store's secret path part. No login,
no session, no CSRF (this route only): the signature over the raw body is the credential. The work is one
order (tatenpo.orders.shopify_webhooks), done before the answer, well inside Shopify's five seconds.

Answers: 200 once the delivery is applied (or was applied before: a repeat; or is a topic Tatenpo does not
use), 401 for a wrong signature, 404 for an unknown token or a store whose webhook route is off, 413 over
the size limit, 400 for a body that is not a Shopify order, 503 when the database cannot take it (Shopify
retries anything but a 2xx).

The switch on 設定 › ECサイト (subscribe the URL, or stop taking deliveries) is here too, on the `settings`
blueprint."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from tatenpo import malls
from tatenpo.models import Store
from tatenpo.orders import shopify_webhooks
from tatenpo.platform.extensions import csrf, db
from tatenpo.views.settings import bp as settings_bp

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)


def _text(message, status: int) -> Response:
    response = Response(str(message) + "\n", status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/webhooks/shopify/<token>", methods=["POST"])
@csrf.exempt
def shopify(token: str):
    try:
        store = shopify_webhooks.store_for_token(token)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("shopify webhook: could not look up the store")
        return _text(_("Try again later."), 503)
    if store is None or not store.webhooks_on or malls.family_of(store.mall) != "shopify":
        return _text(_("Not found."), 404)
    if request.content_length is not None and request.content_length > shopify_webhooks.MAX_BYTES:
        return _text(_("Too large."), 413)
    body = request.get_data(cache=False)
    if len(body) > shopify_webhooks.MAX_BYTES:
        return _text(_("Too large."), 413)
    try:
        outcome = shopify_webhooks.receive(store, body, request.headers)
    except shopify_webhooks.BadSignature as exc:
        db.session.rollback()
        log.warning("shopify webhook for store %s refused: %s", store.id, exc)
        return _text(exc.message, 401)
    except shopify_webhooks.WebhookProblem as exc:
        db.session.rollback()
        log.warning("shopify webhook for store %s not taken: %s", store.id, exc)
        return _text(exc.message, 400)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("shopify webhook for store %s could not be applied", store.id)
        return _text(_("Try again later."), 503)
    log.info("shopify webhook %s for store %s: %s %s", outcome.topic, store.id, outcome.status, outcome.order_number)
    return _text(outcome.status, 200)


@settings_bp.route("/settings/stores/<int:store_id>/webhooks", methods=["POST"])
def webhooks_switch(store_id: int):
    """設定 › ECサイト: switch a Shopify store's webhook route on (Tatenpo subscribes its URL through the Admin
    API) or off. A route of the `settings` blueprint, so the administrator's like the rest of the store settings
    (platform.auth.ACCESS)."""
    store = db.get_or_404(Store, store_id)
    if malls.family_of(store.mall) != "shopify":
        abort(404)
    if request.form.get("action") == "off":
        shopify_webhooks.turn_off(store)
        db.session.commit()
        flash(_("Order webhooks are off. Shopify's deliveries to this store's URL are refused from now on."), "success")
    else:
        try:
            shopify_webhooks.turn_on(
                store, lambda token: url_for("webhooks.shopify", token=token, _external=True))
        except shopify_webhooks.WebhookProblem as exc:
            db.session.commit()  # keeps the reason on the store
            flash(_("Order webhooks could not be registered: %(reason)s", reason=exc.message), "error")
        else:
            db.session.commit()
            flash(_("Order webhooks are on: Shopify sends new, cancelled and fulfilled orders to Tatenpo."), "success")
    return redirect(url_for("settings.edit_store", store_id=store.id) + "#webhooks")
