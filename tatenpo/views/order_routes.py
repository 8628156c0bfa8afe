"""設定 › ECサイト › 受注の経路: switch a store's order API route (受注API polling) on or off, set its poll interval,
and poll now. The administrator's, like the rest of the store settings (platform.auth.ACCESS). The partial templates/settings/_order_routes.html shows every route of the store."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _

from tatenpo import malls
from tatenpo.models import Store
from tatenpo.orders import polling
from tatenpo.platform.extensions import db

bp = Blueprint("order_routes", __name__)


def _back(store_id: int):
    return redirect(url_for("settings.edit_store", store_id=store_id) + "#order-routes")


@bp.route("/settings/stores/<int:store_id>/order-routes", methods=["POST"])
def save(store_id: int):
    store = db.get_or_404(Store, store_id)
    try:
        polling.set_route(store, on=request.form.get("order_api") in ("1", "on", "y"),
                          interval_text=request.form.get("order_poll_seconds", ""))
    except polling.RouteError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return _back(store_id)
    db.session.commit()
    flash(_("The order routes were saved."), "success")
    return _back(store_id)


@bp.route("/settings/stores/<int:store_id>/order-routes/poll", methods=["POST"])
def poll_now(store_id: int):
    store = db.get_or_404(Store, store_id)
    if not polling.can_poll(store):
        flash(_("%(mall)s has no order API Tatenpo reads.", mall=malls.label(store.mall)), "error")
        return _back(store_id)
    try:
        result = polling.poll(store_id)
    except polling.PollBusy:
        flash(_("The orders of this EC site are being read right now. Try again in a moment."), "error")
        return _back(store_id)
    if result.ok:
        flash(_("Orders read: %(seen)s from the EC site, %(changed)s new or changed.", seen=result.seen,
                changed=len(result.orders)), "success")
    else:
        flash(_("The order API could not be read: %(reason)s", reason=result.error), "error")
    return _back(store_id)
