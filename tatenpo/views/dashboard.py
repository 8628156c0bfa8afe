"""トップ: what needs the shop's attention now — failing stores and items, listings 未反映 or changed on the
mall, what waits to be pushed, whether the scheduler is alive, and ✓ / ✗ per hour over the last day."""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from tatenpo.models import Listing, Product, Store
from tatenpo.platform.extensions import db
from tatenpo.sync import status
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
    )


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
