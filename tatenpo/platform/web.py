"""What every page shares: security headers, template helpers, friendly error pages, the request class."""
from __future__ import annotations

import json
import logging
import unicodedata
from urllib.parse import unquote, urlsplit

import flask
from flask import flash, g, jsonify, render_template, request
from flask_babel import format_datetime, format_decimal, get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from tatenpo.platform import incoming_files

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    from flask import current_app

    if current_app.config.get("HTTPS"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.headers.get("HX-Request"):
        response.vary.add("HX-Request")
    return response


# The htmx event that app.js shows as a message above the page (HX-Trigger: {"tatenpo-notice": "…"}).
NOTICE_EVENT = "tatenpo-notice"


def notify(response, message: str):
    """Tell the user something beside the response: an HX-Trigger event for htmx (its own swap stays as it
    is), else a message on the next page (the redirect after a save)."""
    if request.headers.get("HX-Request"):
        events = {}
        existing = response.headers.get("HX-Trigger")
        if existing:
            try:
                events = json.loads(existing)
            except ValueError:  # the plain form: comma-separated event names
                events = {name.strip(): None for name in existing.split(",") if name.strip()}
        events[NOTICE_EVENT] = str(message)
        response.headers["HX-Trigger"] = json.dumps(events)  # ASCII-escaped: a header carries no raw UTF-8
    else:
        flash(str(message), "info")
    return response


def _push_deferred_notice(response):
    # sync/queueing could not queue a committed change's 即時同期 (Redis away): the sweep pushes it later.
    if g.pop("push_deferred", False):
        notify(response, _("Saved. The sync will be sent once it resumes."))
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _error_page(code: int, message: str):
    if wants_json():
        return jsonify(error=message), code
    return render_template("error.html", code=code, message=message), code


def number(value) -> str:
    """1234567 → 1,234,567 (thousands separators in every locale we offer). A whole number, what tables show
    by the hundred, is formatted directly: Babel's per-call cost was a visible part of a 50-row page."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"  # the same grouping as Babel's "#,##0" in ja and en
    return format_decimal(value, format="#,##0")


def datetime_local(value, fmt: str = "yyyy/MM/dd HH:mm") -> str:
    """A naive-UTC time from the database, shown in the configured zone (Asia/Tokyo)."""
    if value is None:
        return "—"
    return format_datetime(value, fmt)


class Request(flask.Request):
    """Uploaded files are written once, as they arrive, beside where uploads are kept (platform/incoming_files.py),
    not to a temporary file that storing the upload would copy again; the request removes at its end those
    it did not keep (a refused form, an upload cut short)."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        stream = incoming_files.incoming()
        self.__dict__.setdefault("_incoming", []).append(stream)
        return stream

    def close(self) -> None:
        try:
            super().close()
        finally:
            for stream in self.__dict__.pop("_incoming", ()):
                stream.close()


def init_app(app) -> None:
    app.request_class = Request
    app.after_request(_security_headers)
    app.after_request(_push_deferred_notice)
    # Browsers ask for /favicon.ico on every page whatever the <link rel=icon> says: the same icon, public
    # like every static file (the "static" endpoint).
    app.add_url_rule("/favicon.ico", endpoint="static", view_func=app.view_functions["static"],
                     defaults={"filename": "favicon.svg"})
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["localtime"] = datetime_local

    @app.context_processor
    def _globals():
        return {"current_locale": str(get_locale() or "ja")}

    @app.errorhandler(CSRFError)
    def _csrf(error):
        return _error_page(400, _("The form expired or was sent from elsewhere. Reload the page and try again."))

    @app.errorhandler(403)
    def _forbidden(error):
        return _error_page(403, _("You do not have permission to see this page."))

    @app.errorhandler(404)
    def _not_found(error):
        return _error_page(404, _("This page does not exist."))

    @app.errorhandler(413)
    def _too_large(error):
        limit = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return _error_page(413, _("The file is too large (the limit is %(mb)s MB).", mb=limit))

    @app.errorhandler(500)
    def _server_error(error):
        log.error("server error", exc_info=getattr(error, "original_exception", None))
        return _error_page(500, _("Something went wrong on our side. Nothing was changed; try again."))


def safe_next(target: str | None, fallback: str) -> str:
    # Only a path on this site, so a crafted link cannot bounce the user elsewhere (after login, after saving).
    # Browsers drop tabs and newlines and read \ as /, so "/\t/evil" and "/\\evil" mean //evil: any whitespace,
    # control character or backslash is refused, as is a path whose decoded form has a scheme or a host.
    def unusual(text: str) -> bool:
        return "\\" in text or any(c.isspace() or unicodedata.category(c).startswith("C") for c in text)

    if not target or len(target) > 2000 or not target.startswith("/") or unusual(target):
        return fallback
    path = unquote(urlsplit(target).path)
    for text in (target, path):
        parts = urlsplit(text)
        if text.startswith("//") or parts.scheme or parts.netloc or unusual(text):
            return fallback
    return target
