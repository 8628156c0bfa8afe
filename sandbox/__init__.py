"""Sandbox malls: a small separate server that speaks each mall's real stock protocol under a per-mall prefix
(http://127.0.0.1:5001/rakuten/es/2.0/…, /yahoo/ShoppingWebService/V1/…, /shopify/<shop>/admin/api/…,
/amazon/listings/2021-08-01/…), plus the 楽天 FTP route, a JSON admin API under /_sandbox and pages showing
each store's stock. Run it with `python -m sandbox`. It shares nothing with Tatenpo but the network. The malls
are listed once, in sandbox/malls.py."""
from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, Response, g

from .limits import Limiter
from .state import State

# The sandbox pages' icon: a shop front in the colour of their header, small enough to keep inline.
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           'fill="#5b2a86"/><path d="M3 6h10v7H3z" fill="#fff"/></svg>')


def create_app(db_path: str, public_url: str, ftp_host: str = "127.0.0.1", ftp_port: int = 2121) -> Flask:
    from . import admin, malls, oauth, order_csv

    app = Flask(__name__)
    app.config.update(PUBLIC_URL=public_url.rstrip("/"), FTP_HOST=ftp_host, FTP_PORT=ftp_port,
                      JSON_AS_ASCII=False, MAX_CONTENT_LENGTH=64 * 1024 * 1024)
    app.json.ensure_ascii = False
    app.extensions["sandbox.state"] = State(db_path)
    app.extensions["sandbox.limiter"] = Limiter()
    app.register_blueprint(admin.bp)
    app.register_blueprint(oauth.apps_bp)  # the stores' apps: their registered callback URLs
    app.register_blueprint(order_csv.bp)  # each store's order CSV download (受注取込)
    for blueprint in malls.blueprints():  # every mall's API, from the one list in sandbox/malls.py
        app.register_blueprint(blueprint)

    @app.get("/favicon.ico")
    def _favicon() -> Response:
        # Browsers ask every server they show a page of for /favicon.ico; a 404 is an error in their console.
        return Response(FAVICON, mimetype="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    @app.before_request
    def _arrival() -> None:
        g.sandbox_arrived = time.monotonic()  # rate limits count from receipt, not from when a thread got to it

    return app


def default_db_path() -> str:
    return os.environ.get("SANDBOX_DB") or str(Path(os.environ.get("TATENPO_INSTANCE", "instance")) / "sandbox.db")
