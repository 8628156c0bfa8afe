"""サポートセンター: the application form (seed fields, inline validation, confirm page), the applicant's list,
and the support role's queue with 設定完了 / 差し戻し, which tell the applicant by email."""
from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from tatenpo.models import Store, SupportApplication
from tatenpo.platform.extensions import db

START = "自動受注メール取込・自動在庫同期を開始する"


@pytest.fixture
def outbox(app, tmp_path) -> Path:
    """Each test gets its own instance folder, so the .eml files it finds are its own."""
    app.instance_path = str(tmp_path / "instance")
    return Path(app.instance_path) / "mail"


def _answers(**changes):
    data = {
        "company": "株式会社たてんぽ商店",
        "contact_name": "山田 花子",
        "contact_email": "hanako@example.jp",
        "malls": ["rakuten", "yahoo"],
        "application_type": START,
        "inquiry": "自動受注メール取込みアドレスの申請",
        "note": "楽天市場に2店舗目を出店予定",
    }
    data.update(changes)
    return data


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(SupportApplication))


def test_form_has_the_seed_fields_the_prefilled_inquiry_and_the_business_days_note(client, auth):
    auth.login()
    page = client.get("/support/apply").get_data(as_text=True)
    for label in ("会社名", "ご担当者名", "ご担当者メールアドレス", "在庫同期申請モール", "在庫同期申請タイプ", "お問合せ内容", "備考"):
        assert label in page
    for mall in ("楽天市場", "Yahoo!ショッピング", "Amazon", "Shopify"):
        assert 'type="checkbox" value=' in page and mall in page
    assert f'<option selected value="{START}">' in page
    assert re.search(r'name="inquiry"[^>]*>\s*自動受注メール取込みアドレスの申請</textarea>', page)
    assert "楽天市場に2店舗目を出店予定" in page and "Yahoo!ショッピングは2店舗分の設定を希望" in page
    assert "2営業日" in page and "5営業日" in page
    # Required fields carry the form's ※ mark: 会社名, ご担当者名, モール, タイプ.
    assert page.count('class="req"') == 4


def test_answers_are_confirmed_before_anything_is_saved_then_submitted(app, client, auth):
    auth.login()
    confirm = client.post("/support/apply", data=_answers())
    text = confirm.get_data(as_text=True)
    assert "申請内容の確認" in text
    assert "株式会社たてんぽ商店" in text and "楽天市場、Yahoo!ショッピング" in text
    assert _count(app) == 0

    sent = client.post("/support/apply", data=_answers(action="submit"), follow_redirects=True)
    text = sent.get_data(as_text=True)
    assert "申請中" in text and "2営業日" in text
    with app.app_context():
        application = db.session.scalar(select(SupportApplication))
        assert application.status == "pending"
        assert application.malls == ["rakuten", "yahoo"]
        assert application.applicant.email == "staff@example.jp"
        assert application.note == "楽天市場に2店舗目を出店予定"
    assert "株式会社たてんぽ商店" in client.get("/support").get_data(as_text=True)


def test_back_and_edit_returns_to_the_form_with_the_answers(client, auth, app):
    auth.login()
    page = client.post("/support/apply", data=_answers(action="edit")).get_data(as_text=True)
    assert 'value="株式会社たてんぽ商店"' in page and "申請内容を確認する" in page
    assert _count(app) == 0


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"company": "  "}, "会社名を入力してください。"),
        ({"contact_name": ""}, "ご担当者名を入力してください。"),
        ({"malls": []}, "モールを1つ以上選んでください。"),
        ({"contact_email": "not-an-address"}, "正しいメールアドレスを入力してください"),
    ],
)
def test_missing_or_bad_answers_are_named_and_nothing_is_saved(app, client, auth, changes, message):
    auth.login()
    for action in ("confirm", "submit"):
        response = client.post("/support/apply", data=_answers(action=action, **changes))
        assert response.status_code == 200
        assert message in response.get_data(as_text=True)
    assert _count(app) == 0


def test_inline_validation_returns_only_the_fields_message(client, auth):
    auth.login()
    headers = {"HX-Request": "true"}
    bad = client.post("/support/apply/validate?field=company", data=_answers(company="", malls=[]), headers=headers)
    text = bad.get_data(as_text=True)
    assert "会社名を入力してください。" in text and 'role="alert"' in text
    assert "<html" not in text and "<input" not in text  # the input itself is never replaced
    assert "モールを1つ以上" not in text  # other fields' errors wait for their turn
    good = client.post("/support/apply/validate?field=company", data=_answers(), headers=headers)
    assert good.status_code == 200 and good.get_data(as_text=True).strip() == ""
    malls = client.post("/support/apply/validate?field=malls", data=_answers(malls=[]), headers=headers)
    assert "モールを1つ以上選んでください。" in malls.get_data(as_text=True)
    assert client.post("/support/apply/validate?field=status", data=_answers(), headers=headers).status_code == 404
    page = client.get("/support/apply").get_data(as_text=True)
    assert 'hx-target="#company-feedback"' in page and 'id="company-feedback"' in page


def test_support_user_sees_the_queue_and_completes_issuing_order_mail_addresses(app, client, auth, make, outbox):
    store = make.store(mall="rakuten", name="楽天本店")
    applicant = make.user(email="shop@example.jp")
    application = make.application(malls=["rakuten"], status="pending", applicant_id=applicant.id, contact_email=None)
    auth.login(email="support@example.jp", role="support")
    queue = client.get("/support").get_data(as_text=True)
    assert "対応待ちの申請" in queue and "株式会社テスト" in queue

    done = client.post(f"/support/applications/{application.id}/complete", follow_redirects=True)
    text = done.get_data(as_text=True)
    assert "設定完了" in text
    with app.app_context():
        address = db.session.get(Store, store.id).order_mail_address
        assert address and address.startswith(f"order-{store.id}-")
        assert db.session.get(SupportApplication, application.id).handled_by.email == "support@example.jp"
    assert address in text

    # No MAIL_SERVER: the message to the applicant is kept as an .eml file and listed in the UI.
    files = list(outbox.glob("*.eml"))
    assert len(files) == 1
    raw = files[0].read_bytes().decode("ascii")
    assert "To: shop@example.jp" in raw
    listed = client.get("/support/mail").get_data(as_text=True)
    assert "shop@example.jp" in listed and "設定が完了しました" in listed
    body = client.get(f"/support/mail/{files[0].name}").get_data(as_text=True)
    assert address in body


def test_return_needs_a_comment_and_the_applicant_sees_it(app, client, auth, make, outbox):
    application = make.application(malls=["yahoo"], status="pending", contact_email="tanaka@example.jp")
    auth.login(email="support@example.jp", role="support")
    empty = client.post(f"/support/applications/{application.id}/return", data={"comment": " "})
    assert empty.status_code == 422
    assert "差し戻しの理由を入力してください。" in empty.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(SupportApplication, application.id).status == "pending"
    assert not outbox.exists() or not list(outbox.glob("*.eml"))

    client.post(f"/support/applications/{application.id}/return", data={"comment": "会社名が登記と違います"})
    with app.app_context():
        returned = db.session.get(SupportApplication, application.id)
        assert returned.status == "returned" and returned.comment == "会社名が登記と違います"
    assert "To: tanaka@example.jp" in list(outbox.glob("*.eml"))[0].read_bytes().decode("ascii")
    auth.logout()
    auth.login()
    page = client.get(f"/support/applications/{application.id}").get_data(as_text=True)
    assert "差し戻し" in page and "会社名が登記と違います" in page and "この内容で再申請する" in page


def test_staff_cannot_complete_or_return_applications(app, client, auth, make):
    application = make.application(status="pending")
    auth.login()
    assert client.post(f"/support/applications/{application.id}/complete").status_code == 403
    assert client.post(f"/support/applications/{application.id}/return", data={"comment": "x"}).status_code == 403
    with app.app_context():
        assert db.session.get(SupportApplication, application.id).status == "pending"


def test_completing_twice_is_refused_with_a_message(client, auth, make):
    application = make.application(status="completed")
    auth.login(email="support@example.jp", role="support")
    page = client.post(f"/support/applications/{application.id}/complete", follow_redirects=True).get_data(as_text=True)
    assert "この申請はすでに設定完了です。" in page


def test_mail_goes_out_by_smtp_when_a_server_is_configured(app, client, auth, make, outbox):
    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
        application = make.application(status="pending", contact_email="hanako@example.jp")
        auth.login(email="support@example.jp", role="support")
        client.post(f"/support/applications/{application.id}/complete")
    finally:
        controller.stop()
    assert [e.rcpt_tos for e in received] == [["hanako@example.jp"]]
    assert "=?utf-8?" in received[0].content.decode("ascii")  # a Japanese subject, encoded
    assert not outbox.exists()


def test_unreachable_mail_server_is_reported_but_the_completion_stands(app, client, auth, make):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    application = make.application(status="pending", contact_email="hanako@example.jp")
    auth.login(email="support@example.jp", role="support")
    page = client.post(f"/support/applications/{application.id}/complete", follow_redirects=True).get_data(as_text=True)
    assert "メールで通知できませんでした" in page
    with app.app_context():
        assert db.session.get(SupportApplication, application.id).status == "completed"


def test_stored_mail_cannot_be_read_outside_the_outbox(app, client, auth, outbox):
    auth.login()
    with app.app_context():
        from tatenpo.platform import mail

        stored = mail.send("hanako@example.jp", "件名", "本文")
    message = (outbox / stored).read_bytes()
    assert "本文" in client.get(f"/support/mail/{stored}").get_data(as_text=True)
    # Files the page must never show, each a readable message, so that only the view's guard (a plain
    # *.eml name: no separator, not hidden) can answer 404 for them: a backslash is a separator on Windows,
    # and anything else under instance/ (config.py, keys) is not mail.
    for refused in ("config.py", ".hidden.eml", "mail\\..\\..\\config.eml"):
        (outbox / refused).write_bytes(message)
        response = client.get("/support/mail/" + refused.replace("\\", "%5C"))
        assert response.status_code == 404, refused
        assert "本文" not in response.get_data(as_text=True)
    # An encoded slash never reaches the view: the router answers 404 before it.
    assert client.get("/support/mail/..%2Fconfig.py").status_code == 404
    assert client.get("/support/mail/nothing.eml").status_code == 404


def test_english_users_see_the_form_in_english(client, auth, make):
    make.user(email="en@example.jp", locale="en")
    auth.login(email="en@example.jp")
    page = client.get("/support/apply").get_data(as_text=True)
    assert "Company name" in page and "Malls to sync" in page
