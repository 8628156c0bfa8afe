"""The HTTP door of 自動受注メール取込, for inbound-mail services: POST /inbound/mail/<token> with one raw
RFC 822 mail, for the store whose secret `inbound_token` is in the URL. No login, no session, no CSRF: the
token is the credential (設定 › ECサイト shows it and issues a new one).

The body is the mail itself (message/rfc822, application/octet-stream, …), or a form with the mail in a field
named `email` or `message` (SendGrid Inbound Parse with "POST the raw, full MIME message" posts multipart
form data with the mail in `email`: https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/setting-up-the-inbound-parse-webhook)
or `body-mime` (Mailgun posts the raw mail there when the route's URL ends in "mime", so this door also answers
at …/<token>/mime: https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/receive-http).
Form fields are read as bytes, byte for byte: an 8-bit Shift_JIS mail must reach the parsers unchanged.

Answers: 202 {"id": …} once the mail is committed (200 on the Mailgun path: Mailgun retries any other code),
404 for an unknown token (whether a store exists is not revealed), 413 over ORDER_MAIL_MAX_MB, 400 for an
empty or non-mail body, 503 with Retry-After when the database cannot take it, so the service retries.
"""
from __future__ import annotations

import hmac
import logging
from email.parser import BytesHeaderParser
from urllib.parse import parse_qsl

from flask import Blueprint, Response, jsonify, request
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from tatenpo.orders import intake
from tatenpo.platform.extensions import csrf, db

log = logging.getLogger(__name__)

bp = Blueprint("inbound", __name__)

MAIL_FIELDS = ("email", "message", "body-mime")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# Room for the other fields a service posts beside the mail, and for urlencoding (up to three bytes per byte).
FORM_OVERHEAD = 1024 * 1024
RETRY_AFTER_SECONDS = 60
# Headers of which a mail has at least one; a body with none of them is not a mail.
MAIL_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Received")


def _text(message, status: int, **headers) -> Response:
    response = Response(str(message) + "\n", status=status, mimetype="text/plain", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _read_body(limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` — found out without reading more than that."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, total = [], 0
    while True:
        chunk = request.stream.read(min(64 * 1024, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None


def _multipart_fields(body: bytes, boundary: str) -> dict[str, bytes]:
    """The fields of a multipart/form-data body as raw bytes (Werkzeug's form would decode them as UTF-8)."""
    decoder = MultipartDecoder(boundary.encode("latin-1"))
    decoder.receive_data(body)
    decoder.receive_data(None)
    fields: dict[str, bytearray] = {}
    name = None
    event = decoder.next_event()
    while not isinstance(event, (Epilogue, NeedData)):
        if isinstance(event, (Field, File)):
            name = event.name
            fields.setdefault(name, bytearray())
        elif isinstance(event, Data) and name is not None:
            fields[name] += event.data
        event = decoder.next_event()
    return {key: bytes(value) for key, value in fields.items()}


def _urlencoded_fields(body: bytes) -> dict[str, bytes]:
    # Latin-1 maps each percent-decoded byte to one character and back, so nothing is lost.
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return {key: value.encode("latin-1") for key, value in pairs}


def _mail_in(body: bytes) -> bytes | None:
    """The raw mail a request carries: a form's mail field, else the body itself."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        boundary = request.mimetype_params.get("boundary")
        if not boundary:
            return None
        try:
            fields = _multipart_fields(body, boundary)
        except ValueError:
            return None
        return next((fields[name] for name in MAIL_FIELDS if name in fields), None)
    if mimetype == "application/x-www-form-urlencoded":
        fields = _urlencoded_fields(body)
        found = next((fields[name] for name in MAIL_FIELDS if name in fields), None)
        # `curl --data-binary @order.eml` sends a raw mail under this type.
        return found if found is not None else body
    return body


def _looks_like_mail(raw: bytes) -> bool:
    headers = BytesHeaderParser().parsebytes(raw)  # never raises: a malformed header is only a defect
    return any(headers.get(name) for name in MAIL_HEADERS)


def _store_for(token: str):
    """The store whose door this is, or None; the token is compared in constant time after the lookup."""
    if not token or len(token) > 64:
        return None
    store = intake.store_for_token(token)
    if store is None or not hmac.compare_digest(store.inbound_token.encode(), token.encode()):
        return None
    return store


@bp.route("/inbound/mail/<token>", methods=["POST"], defaults={"mailgun": False})
@bp.route("/inbound/mail/<token>/mime", methods=["POST"], defaults={"mailgun": True})
@csrf.exempt
def receive_mail(token: str, mailgun: bool):
    try:
        store = _store_for(token)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("inbound mail door: could not look up the store")
        return _text(_("Cannot store mail right now; try again later."), 503, **{"Retry-After": RETRY_AFTER_SECONDS})
    if store is None:
        return _text(_("Not found."), 404)

    limit = intake.max_bytes()
    body = _read_body(limit * 3 + FORM_OVERHEAD if request.mimetype in FORM_TYPES else limit)
    if body is None:
        return _text(_("The mail is larger than the limit of %(mb)s MB.", mb=limit // (1024 * 1024)), 413)
    raw = _mail_in(body)
    if not raw or not raw.strip():
        return _text(_("No mail in the request: send the raw mail as the body, or in a form field named "
                       "email, message or body-mime."), 400)
    if not _looks_like_mail(raw):
        return _text(_("The request body is not a mail (RFC 822)."), 400)

    try:
        mail = intake.receive(raw, store, recipient=store.order_mail_address or "", via="http")
    except intake.MailTooLarge as exc:
        return _text(exc.message, 413)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("inbound mail door: could not store a mail for store %s", store.id)
        return _text(_("Cannot store mail right now; try again later."), 503, **{"Retry-After": RETRY_AFTER_SECONDS})
    log.info("inbound mail door: stored mail %s for store %s", mail.id, store.id)
    response = jsonify(id=mail.id)
    response.status_code = 200 if mailgun else 202
    return response
