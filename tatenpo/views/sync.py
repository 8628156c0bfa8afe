"""在庫同期履歴: every push attempt with ✓ / ✗, filters, CSV export, 今すぐ同期, and drift decisions.

The table polls (htmx, every 5 s) only while something is in flight and answers HTTP 286 to stop once idle.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from tatenpo.models import Store
from tatenpo.platform.extensions import db
from tatenpo.stock.stock_csv import neutralise
from tatenpo.sync import queueing, readback, status
from tatenpo.views.tables import is_htmx

bp = Blueprint("sync", __name__)

RESULT_CHOICES = [("", _l("All")), ("ok", _l("✓ Succeeded")), ("ng", _l("✗ Failed")), ("retry", _l("↻ Will retry"))]
STATUS_LABELS = {
    "running": _l("Running"),
    "success": _l("Succeeded"),
    "partial": _l("Partly failed"),
    "failed": _l("Failed"),
    "blocked": _l("Not started"),
}

def _filters() -> tuple[dict, list[str]]:
    """The filters from the query string; a bad value is ignored with a message, never a 500."""
    errors = []
    values = {"store_id": None, "result": None, "day": None}
    raw_store = request.args.get("store", "").strip()
    if raw_store:
        if raw_store.isdigit() and db.session.get(Store, int(raw_store)):
            values["store_id"] = int(raw_store)
        else:
            errors.append(_("Unknown EC site; showing all."))
    raw_result = request.args.get("result", "").strip()
    if raw_result:
        if raw_result in status.RESULTS:
            values["result"] = raw_result
        else:
            errors.append(_("Unknown result filter; showing all."))
    raw_day = request.args.get("date", "").strip()
    if raw_day:
        try:
            values["day"] = date.fromisoformat(raw_day.replace("/", "-"))
        except ValueError:
            errors.append(_("“%(value)s” is not a date (use YYYY-MM-DD); showing every day.", value=raw_day))
    return values, errors


def _checks(row: status.HistoryRow, stores: dict[int, Store]) -> list[dict]:
    """The three troubleshooting checks (docs/FLOW.md) for a ✗ line, each with what Tatenpo could verify by itself."""
    return status.troubleshooting(stores.get(row.store_id), row.hint)


def _page_data():
    filters, errors = _filters()
    rows = status.history(limit=200, **filters)
    stores = {s.id: s for s in db.session.scalars(select(Store).order_by(Store.id))}
    checks = {(r.kind, r.id): _checks(r, stores) for r in rows if not r.ok}
    return filters, errors, rows, stores, checks


@bp.route("/sync")
def index():
    filters, errors, rows, stores, checks = _page_data()
    polling = status.in_flight()
    context = dict(rows=rows, checks=checks, polling=polling, filters=filters, stores=stores,
                   query=request.query_string.decode())
    if is_htmx():
        response = Response(render_template("sync/_table.html", **context))
        if not polling:
            response.status_code = 286  # htmx: stop polling, the page is idle
        return response
    for message in errors:
        flash(message, "error")
    return render_template(
        "sync/index.html", result_choices=RESULT_CHOICES, states=status.store_states(), status_labels=STATUS_LABELS,
        counts=status.counts(), **context,
    )


@bp.route("/sync/export.csv")
def export():
    filters, _errors = _filters()
    rows = status.history(limit=status.EXPORT_ROWS + 1, **filters)
    cut = len(rows) > status.EXPORT_ROWS
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_("Time"), _("EC site"), _("Listing code"), _("Product code"), _("Quantity"), _("Result"),
                     _("Message"), _("Reflected"), _("Quantity on the mall")])
    marks = {"ok": "✓", "ng": "✗", "retry": _("✗ (will retry)")}
    for r in rows[:status.EXPORT_ROWS]:
        reflected = "" if r.reflected is None else (_("Reflected") if r.reflected else _("Not reflected"))
        # Codes, store names and the malls' messages come from mall files: never let Excel run them.
        writer.writerow([
            _local(r.at), neutralise(r.store_name or ""),
            neutralise(r.listing_code) if r.listing_code else _("(whole run: %(n)s items)", n=r.total or 0),
            neutralise(r.product_code or ""), "" if r.quantity is None else r.quantity, marks[r.result],
            neutralise(r.message or ""), reflected, "" if r.read_back_quantity is None else r.read_back_quantity,
        ])
    if cut:
        writer.writerow([_("Cut at %(n)s rows: choose an EC site or a day to export the rest.",
                           n=f"{status.EXPORT_ROWS:,}")])
    # UTF-8 with a BOM: Excel opens it with the Japanese intact.
    body = "\ufeff" + buffer.getvalue()
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    return Response(body.encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=sync-history-{stamp}.csv"})


def _local(value: datetime) -> str:
    from tatenpo.platform.web import datetime_local

    return datetime_local(value, "yyyy/MM/dd HH:mm:ss")


@bp.route("/sync/stores/<int:store_id>/push", methods=["POST"])
def push_now(store_id: int):
    """今すぐ同期: queue the store's push now (the worker pushes every open entry, backoff or not)."""
    store = db.get_or_404(Store, store_id)
    try:
        queued = queueing.request_push(store.id, "manual", mall=store.mall)
    except Exception:  # Redis unreachable: say so; the schedule still holds every change
        flash(_("The sync queue cannot be reached right now. Pending changes are kept and will be pushed later."), "error")
    else:
        if queued:
            flash(_("Sync of %(store)s has started. Results appear below.", store=store.name), "success")
        else:
            flash(_("A sync of %(store)s is already queued.", store=store.name), "info")
    return redirect(url_for("sync.index", store=store.id))


@bp.route("/sync/listings/<int:listing_id>/drift", methods=["POST"])
def resolve_drift(listing_id: int):
    """The shop's choice for a listing changed on the mall: overwrite the mall, or adopt its value."""
    choice = request.form.get("choice")
    try:
        if choice == "overwrite":
            readback.overwrite_mall(listing_id)
            message = _("Tatenpo's stock will be pushed to the mall again.")
        elif choice == "adopt":
            readback.adopt_mall_value(listing_id, user=current_user if current_user.is_authenticated else None)
            message = _("The mall's stock was adopted as Tatenpo's stock.")
        else:
            raise readback.DriftError(_("Choose whether to overwrite the mall or adopt its value."))
    except (readback.DriftError, ValueError) as exc:
        db.session.rollback()
        flash(str(getattr(exc, "message", exc)), "error")
    else:
        db.session.commit()
        flash(message, "success")
    return redirect(url_for("dashboard.index"))
