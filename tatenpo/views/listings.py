"""Listings. This screen is filled by its own issue; until then it says plainly that it is not ready."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l

bp = Blueprint("listings", __name__)


@bp.route("/listings")
def index():
    return render_template("not_ready.html", title=_l("Listings"))
