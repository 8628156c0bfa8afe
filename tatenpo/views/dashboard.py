"""トップ: what needs the shop's attention now — failing stores and items, listings 未反映 or changed on the
mall, what waits to be pushed, whether the scheduler is alive, and ✓ / ✗ per hour over the last day; and from
受注: 売り越し with its orders, 未紐付け lines, order mails that failed, 説明のない減少 waiting for the shop's
choice, and each store's order-mail route (silent ones warned)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from tatenpo.models import Listing, Product, Store
from tatenpo.orders import queries as order_queries
from tatenpo.platform.extensions import db
from tatenpo.sync import decreases, status
from tatenpo.views.sync import STATUS_LABELS

bp = Blueprint("dashboard", __name__)

CHART_WIDTH = 720
CHART_HEIGHT = 160


@bp.route("/")
def index():
    counts = {
        "stores": db.session.scalar(select(func.count()).select_from(Store)),
        "products": db.session.scalar(select(func.count()).select_from(Product)),
        "listings": db.session.scalar(select(func.count()).select_from(Listing)),
        **status.counts(),
    }
    failing_total, failing_items = status.failing_items()
    return render_template(
        "dashboard/index.html",
        counts=counts,
        scheduler=status.scheduler_state(),
        failing_stores=status.failing_stores(),
        failing_items=failing_items,
        failing_total=failing_total,
        attention=status.listings_needing_attention(),
        chart=_chart(status.hourly_results()),
        status_labels=STATUS_LABELS,
        oversold=order_queries.oversold(),
        unlinked_lines=order_queries.unlinked_line_count(),
        failed_mails=order_queries.failed_mail_count(),
        decreases=decreases.flagged(),
        mail_routes=order_queries.mail_routes(),
        silence_days=order_queries.silence_days(),
    )


@bp.route("/decreases/<int:listing_id>", methods=["POST"])
def resolve_decrease(listing_id: int):
    """説明のない減少: book it as a sale (販売として計上) or push Tatenpo's count over it (上書きする)."""
    choice = request.form.get("choice")
    user = current_user if current_user.is_authenticated else None
    try:
        if choice == "adopt":
            units = decreases.adopt(listing_id, user=user)
            message = _("The decrease of %(n)s was booked as a sale.", n=units)
        elif choice == "overwrite":
            decreases.overwrite(listing_id, user=user)
            message = _("Tatenpo's stock will be pushed over the mall's.")
        else:
            raise decreases.DecreaseError(_("Choose whether to book the decrease as a sale or to overwrite the mall."))
    except decreases.DecreaseError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    else:
        db.session.commit()
        flash(message, "success")
    return redirect(url_for("dashboard.index") + "#decreases-heading")


def _chart(hours: list[dict]) -> dict:
    """Bars for a server-drawn SVG (the page runs no script): ✓ stacked under ✗, one pair per hour."""
    top = max([h["ok"] + h["ng"] for h in hours] + [1])
    slot = CHART_WIDTH / len(hours)
    plot = CHART_HEIGHT - 20
    bars = []
    for i, h in enumerate(hours):
        ok_height = plot * h["ok"] / top
        ng_height = plot * h["ng"] / top
        bars.append({
            "x": round(i * slot + 2, 1),
            "width": round(slot - 4, 1),
            "ok_y": round(plot - ok_height, 1),
            "ok_height": round(ok_height, 1),
            "ng_y": round(plot - ok_height - ng_height, 1),
            "ng_height": round(ng_height, 1),
            "hour": h["hour"],
            "ok": h["ok"],
            "ng": h["ng"],
            "label": i % 3 == 0,
        })
    return {"bars": bars, "width": CHART_WIDTH, "height": CHART_HEIGHT, "top": top, "baseline": plot,
            "total_ok": sum(h["ok"] for h in hours), "total_ng": sum(h["ng"] for h in hours)}
