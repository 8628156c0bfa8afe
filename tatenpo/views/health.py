"""GET /healthz for load balancers and operators: 200 when every part is up, 503 with the broken part named."""
from flask import Blueprint, jsonify

from tatenpo.platform import health

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    ok, checks = health.report()
    response = jsonify(status="ok" if ok else "degraded", checks=checks)
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response
