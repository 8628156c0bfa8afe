"""Sandbox malls: a small separate server that speaks each mall's real stock protocol under a per-mall prefix
(http://127.0.0.1:5001/rakuten/es/2.0/…, /yahoo/ShoppingWebService/V1/…, /shopify/<shop>/admin/api/…,
/amazon/listings/2021-08-01/…), plus the 楽天 FTP route, a JSON admin API under /_sandbox and pages showing
each store's stock. Run it with `python -m sandbox`. It shares nothing with Tatenpo but the network."""
from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, g

from .limits import Limiter
from .state import State


def create_app(db_path: str, public_url: str, ftp_host: str = "127.0.0.1", ftp_port: int = 2121) -> Flask:
    from . import admin, amazon, oauth, rakuten, shopify, yahoo

    app = Flask(__name__)
    app.config.update(PUBLIC_URL=public_url.rstrip("/"), FTP_HOST=ftp_host, FTP_PORT=ftp_port,
                      JSON_AS_ASCII=False, MAX_CONTENT_LENGTH=64 * 1024 * 1024)
    app.json.ensure_ascii = False
    app.extensions["sandbox.state"] = State(db_path)
    app.extensions["sandbox.limiter"] = Limiter()
    for module in (admin, rakuten, yahoo, shopify, amazon):
        app.register_blueprint(module.bp)
    app.register_blueprint(oauth.yahoo_bp)
    app.register_blueprint(oauth.amazon_bp)

    @app.before_request
    def _arrival() -> None:
        g.sandbox_arrived = time.monotonic()  # rate limits count from receipt, not from when a thread got to it

    return app


def default_db_path() -> str:
    return os.environ.get("SANDBOX_DB") or str(Path(os.environ.get("TATENPO_INSTANCE", "instance")) / "sandbox.db")
