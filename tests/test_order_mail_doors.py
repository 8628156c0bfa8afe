"""The three doors onto 自動受注メール取込 — the SMTP receiver, the HTTP door for inbound-mail services and
`orders import-mail` — over real SMTP and HTTP sockets and the real database: a door says "accepted" only
once the mail is stored, refuses what is not for Tatenpo, and answers "try again" when the database is away.
"""
from __future__ import annotations

import json
import re
import smtplib
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select, text
from werkzeug.serving import make_server

from tatenpo.models import InboundMail, Store
from tatenpo.orders.smtp_receiver import Receiver
from tatenpo.platform.extensions import db

MAILS = Path(__file__).parent / "fixtures" / "mails"
RAKUTEN_ADDRESS = "orders-1@mail.tatenpo.test"  # the To: of the Rakuten fixtures
YAHOO_ADDRESS = "orders-2@mail.tatenpo.test"
TOKEN = "k3Jq9xVb2mNw7LpR4tYz8cHd1fGs6aUe"


def _mail(name: str) -> bytes:
    return (MAILS / name).read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stored(app) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(select(InboundMail).order_by(InboundMail.id)).all()
        return [{"id": m.id, "store_id": m.store_id, "recipient": m.recipient, "via": m.via, "raw": m.raw,
                 "size": m.size, "status": m.status} for m in rows]


@contextmanager
def table_away(app, table: str = "inbound_mails"):
    """The table is gone for a moment (a real failure of every write to it), then back as it was."""
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    try:
        yield
    finally:
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))


@pytest.fixture
def rakuten(make):
    return make.store(mall="rakuten", order_mail_address=RAKUTEN_ADDRESS, inbound_token=TOKEN)


@pytest.fixture
def receiver(app):
    with Receiver(app, "127.0.0.1", _free_port()) as running:
        yield running


def _smtp(receiver) -> smtplib.SMTP:
    return smtplib.SMTP(receiver.host, receiver.port, timeout=60)


# --- SMTP -----------------------------------------------------------------------------------------------------

def test_smtp_mail_to_an_issued_address_is_stored_before_250(app, rakuten, receiver):
    raw = _mail("rakuten-order-iso2022jp.eml")
    with _smtp(receiver) as smtp:
        smtp.ehlo()
        assert "auth" not in smtp.esmtp_features  # nobody logs in here; nothing is relayed
        assert smtp.mail("order@rakuten.co.jp")[0] == 250
        assert smtp.rcpt(RAKUTEN_ADDRESS.upper())[0] == 250  # mail servers may change the case
        code, _reply = smtp.data(raw)
        assert code == 250
        # The 250 has arrived: the mail is in the database already, byte for byte.
        [mail] = _stored(app)
    assert mail["raw"] == raw
    assert mail["store_id"] == rakuten.id and mail["via"] == "smtp" and mail["size"] == len(raw)
    with app.app_context():
        assert db.session.get(Store, rakuten.id).last_order_mail_at is not None


def test_smtp_unknown_recipient_is_refused_with_550_and_nothing_is_stored(app, rakuten, receiver):
    with _smtp(receiver) as smtp:
        smtp.ehlo()
        smtp.mail("order@rakuten.co.jp")
        code, reply = smtp.rcpt("someone@example.com")
        assert code == 550 and b"5.1.1" in reply
        smtp.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("order@rakuten.co.jp", ["order-9-deadbeef@orders.tatenpo.local"], _mail("rakuten-order-cp932.eml"))
    assert _stored(app) == []


def test_smtp_mail_over_the_configured_cap_gets_552_and_nothing_is_stored(app, rakuten):
    app.config["ORDER_MAIL_MAX_BYTES"] = 4096
    big = _mail("rakuten-order-iso2022jp.eml") + b"".join(b"%06d padding line of an oversized order mail\r\n" % i for i in range(200))
    with Receiver(app, "127.0.0.1", _free_port()) as receiver, _smtp(receiver) as smtp:
        smtp.ehlo()
        assert smtp.esmtp_features["size"] == "4096"
        # A sender that announces the size is refused at MAIL FROM, one that does not at the end of DATA.
        assert smtp.mail("order@rakuten.co.jp", [f"SIZE={len(big)}"])[0] == 552
        smtp.rset()
        smtp.mail("order@rakuten.co.jp")
        smtp.rcpt(RAKUTEN_ADDRESS)
        assert smtp.data(big)[0] == 552
        # The session goes on: a mail within the cap is still taken.
        smtp.mail("order@rakuten.co.jp")
        smtp.rcpt(RAKUTEN_ADDRESS)
        assert smtp.data(_mail("rakuten-cancellation.eml"))[0] == 250
    assert [m["size"] for m in _stored(app)] == [len(_mail("rakuten-cancellation.eml"))]


def test_smtp_30_mb_mail_is_refused_by_the_default_cap(app, rakuten, receiver):
    assert receiver.max_bytes == 10 * 1024 * 1024
    line = b"0123456789" * 7 + b"\r\n"
    huge = _mail("rakuten-order-iso2022jp.eml") + line * (30 * 1024 * 1024 // len(line))
    with _smtp(receiver) as smtp:
        smtp.ehlo()
        smtp.mail("order@rakuten.co.jp")
        smtp.rcpt(RAKUTEN_ADDRESS)
        code, _reply = smtp.data(huge)
    assert code == 552
    assert _stored(app) == []


def test_smtp_database_down_answers_451_and_the_retry_is_stored(app, rakuten, receiver):
    raw = _mail("rakuten-order-cp932.eml")
    with table_away(app):
        with _smtp(receiver) as smtp:
            smtp.ehlo()
            smtp.mail("order@rakuten.co.jp")
            assert smtp.rcpt(RAKUTEN_ADDRESS)[0] == 250
            code, reply = smtp.data(raw)
        assert code == 451 and b"4.3.0" in reply
    assert _stored(app) == []  # nothing half-stored; the sender still has the mail
    # The sending server tries again later, through the same receiver process.
    with _smtp(receiver) as smtp:
        assert smtp.sendmail("order@rakuten.co.jp", [RAKUTEN_ADDRESS], raw) == {}
    [mail] = _stored(app)
    assert mail["raw"] == raw and mail["via"] == "smtp"


def test_smtp_database_down_at_rcpt_answers_451(app, rakuten, receiver):
    with table_away(app, "stores"), _smtp(receiver) as smtp:
        smtp.ehlo()
        smtp.mail("order@rakuten.co.jp")
        code, reply = smtp.rcpt(RAKUTEN_ADDRESS)
    assert code == 451 and b"4.3.0" in reply
    with _smtp(receiver) as smtp:
        assert smtp.sendmail("order@rakuten.co.jp", [RAKUTEN_ADDRESS], _mail("rakuten-order-cp932.eml")) == {}
    assert len(_stored(app)) == 1


def test_smtp_two_recipients_of_two_stores_make_two_stored_mails(app, rakuten, make, receiver):
    yahoo = make.store(mall="yahoo", order_mail_address=YAHOO_ADDRESS)
    raw = _mail("yahoo-order-iso2022jp.eml")
    with _smtp(receiver) as smtp:
        refused = smtp.sendmail("store-shopping-order-master@mail.yahoo.co.jp",
                                [YAHOO_ADDRESS, RAKUTEN_ADDRESS, "nobody@example.com"], raw)
    assert set(refused) == {"nobody@example.com"}
    stored = _stored(app)
    assert sorted((m["store_id"], m["recipient"]) for m in stored) == sorted(
        [(yahoo.id, YAHOO_ADDRESS), (rakuten.id, RAKUTEN_ADDRESS)])
    assert all(m["raw"] == raw for m in stored)


# --- HTTP -----------------------------------------------------------------------------------------------------

@pytest.fixture
def live(app):
    """The app on a real HTTP socket (threads, like gunicorn's), so bodies arrive as a service sends them."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_http_raw_mail_with_the_right_token_is_stored(app, rakuten, live):
    raw = _mail("rakuten-order-iso2022jp.eml")
    response = requests.post(f"{live}/inbound/mail/{TOKEN}", data=raw,
                             headers={"Content-Type": "message/rfc822"}, timeout=30)
    assert response.status_code == 202
    [mail] = _stored(app)
    assert response.json() == {"id": mail["id"]}
    assert mail["raw"] == raw and mail["store_id"] == rakuten.id and mail["via"] == "http"
    assert mail["recipient"] == RAKUTEN_ADDRESS


def test_http_wrong_token_is_404_and_reveals_nothing(app, rakuten, live):
    raw = _mail("rakuten-order-iso2022jp.eml")
    for token in (TOKEN[:-1] + "x", "short", "a" * 200):
        response = requests.post(f"{live}/inbound/mail/{token}", data=raw,
                                 headers={"Content-Type": "message/rfc822"}, timeout=30)
        assert response.status_code == 404
        assert str(rakuten.id) not in response.text and "store" not in response.text.lower()
    assert _stored(app) == []


def test_http_multipart_email_field_keeps_an_8bit_mail_byte_for_byte(app, rakuten, live):
    """SendGrid Inbound Parse (raw): multipart form data, the mail in `email`, beside other fields."""
    raw = _mail("rakuten-order-cp932.eml")
    assert any(b > 0x7F for b in raw)  # Shift_JIS bytes that a UTF-8 form decoder would destroy
    response = requests.post(f"{live}/inbound/mail/{TOKEN}", timeout=30, files={
        "to": (None, RAKUTEN_ADDRESS), "envelope": (None, json.dumps({"to": [RAKUTEN_ADDRESS]})),
        "email": (None, raw), "charsets": (None, "{}"),
    })
    assert response.status_code == 202
    [mail] = _stored(app)
    assert mail["raw"] == raw


def test_http_message_field_and_mailgun_body_mime(app, rakuten, live):
    first, second = _mail("rakuten-order-iso2022jp.eml"), _mail("rakuten-order-cp932.eml")
    response = requests.post(f"{live}/inbound/mail/{TOKEN}", files={"message": ("order.eml", first)}, timeout=30)
    assert response.status_code == 202
    # Mailgun posts the raw mail in `body-mime` to a URL ending in "mime", urlencoded, and retries unless 200.
    response = requests.post(f"{live}/inbound/mail/{TOKEN}/mime", timeout=30,
                             data={"recipient": RAKUTEN_ADDRESS, "body-mime": second})
    assert response.status_code == 200
    assert [m["raw"] for m in _stored(app)] == [first, second]


def test_http_oversize_is_413_before_the_body_is_read(app, rakuten, live):
    app.config["ORDER_MAIL_MAX_BYTES"] = 16 * 1024
    big = _mail("rakuten-order-iso2022jp.eml") + b"padding line of an oversized order mail....\r\n" * 1000
    response = requests.post(f"{live}/inbound/mail/{TOKEN}", data=big,
                             headers={"Content-Type": "message/rfc822"}, timeout=30)
    assert response.status_code == 413
    # Without Content-Length (chunked), the door stops reading at the cap.
    chunks = (big[i:i + 4096] for i in range(0, len(big), 4096))
    response = requests.post(f"{live}/inbound/mail/{TOKEN}", data=chunks,
                             headers={"Content-Type": "message/rfc822"}, timeout=30)
    assert response.status_code == 413
    response = requests.post(f"{live}/inbound/mail/{TOKEN}", files={"email": (None, big)}, timeout=30)
    assert response.status_code == 413
    assert _stored(app) == []


def test_http_empty_or_non_mail_body_is_400(app, rakuten, live):
    for body, content_type in ((b"", "message/rfc822"), (b"   \r\n", "application/octet-stream"),
                               (b'{"order": 1}', "application/json"), (b"hello", "text/plain")):
        response = requests.post(f"{live}/inbound/mail/{TOKEN}", data=body, headers={"Content-Type": content_type},
                                 timeout=30)
        assert response.status_code == 400, body
        assert response.text.strip()
    response = requests.post(f"{live}/inbound/mail/{TOKEN}", files={"subject": (None, "x")}, timeout=30)
    assert response.status_code == 400
    assert _stored(app) == []


def test_http_database_error_is_503_with_retry_after_and_the_retry_is_stored(app, rakuten, live):
    raw = _mail("yahoo-order-iso2022jp.eml")
    url = f"{live}/inbound/mail/{TOKEN}"
    with table_away(app):
        response = requests.post(url, data=raw, headers={"Content-Type": "message/rfc822"}, timeout=30)
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
    assert _stored(app) == []
    response = requests.post(url, data=raw, headers={"Content-Type": "message/rfc822"}, timeout=30)
    assert response.status_code == 202
    assert [m["raw"] for m in _stored(app)] == [raw]


def test_http_door_needs_no_login_session_or_csrf(app, rakuten, make, live):
    make.user()  # with a user, every other page asks for a login
    app.config["WTF_CSRF_ENABLED"] = True
    session = requests.Session()
    # The shop's pages do need CSRF and a login: the door is the exception, not the rule. Without the form's
    # token the CSRF check refuses first; with a token (any page carries one) but no login, the login page.
    page = f"{live}/settings/stores/{rakuten.id}/inbound-token"
    refused = session.post(page, allow_redirects=False, timeout=30)
    assert refused.status_code == 400 and "再読み込み" in refused.text
    token = re.search(r'"X-CSRFToken": "([^"]+)"', session.get(f"{live}/login", timeout=30).text).group(1)
    refused = session.post(page, headers={"X-CSRFToken": token}, allow_redirects=False, timeout=30)
    assert refused.status_code == 302 and urlsplit(refused.headers["Location"]).path == "/login"
    response = session.post(f"{live}/inbound/mail/{TOKEN}", data=_mail("rakuten-order-iso2022jp.eml"),
                            headers={"Content-Type": "message/rfc822"}, timeout=30)
    assert response.status_code == 202
    assert "Set-Cookie" not in response.headers
    assert len(_stored(app)) == 1


def test_settings_page_shows_the_door_and_reissues_its_token(app, rakuten, auth, client):
    auth.login()
    page = client.get(f"/settings/stores/{rakuten.id}")
    assert page.status_code == 200
    assert f"/inbound/mail/{TOKEN}".encode() in page.data
    assert "再発行".encode() in page.data
    response = client.post(f"/settings/stores/{rakuten.id}/inbound-token")
    assert response.status_code == 302
    with app.app_context():
        new_token = db.session.get(Store, rakuten.id).inbound_token
    assert new_token and new_token != TOKEN
    page = client.get(f"/settings/stores/{rakuten.id}")
    assert f"/inbound/mail/{new_token}".encode() in page.data and TOKEN.encode() not in page.data
    raw = _mail("rakuten-order-iso2022jp.eml")
    assert client.post(f"/inbound/mail/{TOKEN}", data=raw, content_type="message/rfc822").status_code == 404
    assert client.post(f"/inbound/mail/{new_token}", data=raw, content_type="message/rfc822").status_code == 202


def test_settings_reissue_needs_the_csrf_token(app, rakuten, auth, client):
    auth.login()
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post(f"/settings/stores/{rakuten.id}/inbound-token").status_code == 400
    with app.app_context():
        assert db.session.get(Store, rakuten.id).inbound_token == TOKEN


# --- shell ----------------------------------------------------------------------------------------------------

def test_import_mail_with_store_reads_at_once(app, make, runner):
    store = make.store(mall="rakuten")  # no address issued: --store says whose mails they are
    result = runner.invoke(args=["orders", "import-mail", "--store", str(store.id),
                                 str(MAILS / "rakuten-order-iso2022jp.eml"), str(MAILS / "rakuten-cancellation.eml")])
    assert result.exit_code == 0, result.output
    assert "order 123456-20250314-0123456789" in result.output
    assert "tea-bag-20x3 / tb20-3 × 2" in result.output and "yunomi-01 / yn01-bl-m × 1" in result.output
    assert "rakuten-cancellation.eml" in result.output and "ignored" in result.output
    stored = _stored(app)
    assert [(m["via"], m["store_id"], m["status"]) for m in stored] == [
        ("shell", store.id, "order"), ("shell", store.id, "ignored")]
    assert stored[0]["raw"] == _mail("rakuten-order-iso2022jp.eml")


def test_import_mail_finds_the_store_from_to_and_answers_json(app, rakuten, make, runner):
    make.store(mall="yahoo", order_mail_address=YAHOO_ADDRESS)
    result = runner.invoke(args=["orders", "import-mail", "--json", str(MAILS / "rakuten-order-cp932.eml"),
                                 str(MAILS / "yahoo-daily-report.eml")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(d["status"], d["order_number"]) for d in data] == [
        ("order", "345678-20250401-0987654321"), ("ignored", None)]
    assert data[0]["store_id"] == rakuten.id
    assert data[0]["lines"][0]["code"] == "matcha-30" and data[0]["lines"][0]["quantity"] == 1
    assert data[0]["duplicate"] is False and data[1]["reason"]
    assert [m["recipient"] for m in _stored(app)] == [RAKUTEN_ADDRESS, YAHOO_ADDRESS]
    # The same mail again: stored again, and the order is known already.
    again = runner.invoke(args=["orders", "import-mail", str(MAILS / "rakuten-order-cp932.eml")])
    assert again.exit_code == 0 and "already known" in again.output


def test_import_mail_unknown_address_without_store_fails_and_stores_nothing(app, rakuten, runner):
    result = runner.invoke(args=["orders", "import-mail", str(MAILS / "rakuten-order-iso2022jp.eml"),
                                 str(MAILS / "shopify-order-en-text.eml")])
    assert result.exit_code != 0
    assert "orders-4@mail.tatenpo.test" in result.output and "--store" in result.output
    assert _stored(app) == []
