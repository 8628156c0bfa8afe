"""トップ: what needs the shop's attention now."""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from ..extensions import db
from ..models import Listing, Product, Store, SyncEntry

bp = Blueprint("dashboard", __name__)


@bp.route("/")
def index():
    counts = {
        "stores": db.session.scalar(select(func.count()).select_from(Store)),
        "products": db.session.scalar(select(func.count()).select_from(Product)),
        "listings": db.session.scalar(select(func.count()).select_from(Listing)),
        "pending": db.session.scalar(select(func.count()).select_from(SyncEntry)),
    }
    return render_template("dashboard/index.html", counts=counts)
