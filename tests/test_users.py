"""ユーザー (the administrator's users page) and each user's own password: adding with a role, disabling,
setting a new password, and every such change ending the user's sessions on the server."""
from __future__ import annotations

from sqlalchemy import select

from tatenpo.models import User
from tatenpo.platform.extensions import db

from .conftest import PASSWORD

NEW = "a much longer passphrase"


def _user(app, email: str) -> User:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.expunge(user)
        return user


def _logged_in(app, email: str, password: str = PASSWORD):
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": password}).status_code == 302
    return client


def test_the_administrator_lists_and_adds_users_with_a_role(app, client, auth, make):
    make.user(email="desk@example.jp", role="support")
    auth.login(email="owner@example.jp")
    page = client.get("/users").get_data(as_text=True)
    assert "owner@example.jp" in page and "desk@example.jp" in page and "サポートセンター" in page
    done = client.post("/users", data={"email": " New@Example.jp ", "role": "staff", "password": NEW},
                       follow_redirects=True)
    assert "ユーザー new@example.jp を追加しました。" in done.get_data(as_text=True)
    assert _user(app, "new@example.jp").role == "staff"
    staff = _logged_in(app, "new@example.jp", NEW)
    assert staff.get("/products").status_code == 200 and staff.get("/users").status_code == 403


def test_adding_a_user_with_a_common_password_or_a_taken_email_changes_nothing(app, client, auth):
    auth.login(email="owner@example.jp")
    common = client.post("/users", data={"email": "x@example.jp", "role": "staff", "password": "qwerty123"})
    assert common.status_code == 422 and "真っ先に試される" in common.get_data(as_text=True)
    taken = client.post("/users", data={"email": "owner@example.jp", "role": "staff", "password": NEW})
    assert taken.status_code == 422 and "既に登録されています" in taken.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User.email).where(User.email == "x@example.jp")) is None
        assert db.session.scalar(select(User.role).where(User.email == "owner@example.jp")) == "admin"


def test_disabling_ends_the_users_sessions_and_enabling_lets_them_back(app, client, auth, make):
    staff = make.user(email="staff2@example.jp")
    session = _logged_in(app, "staff2@example.jp")
    assert session.get("/").status_code == 200
    auth.login(email="owner@example.jp")
    page = client.post(f"/users/{staff.id}/disable", follow_redirects=True).get_data(as_text=True)
    assert "staff2@example.jp を無効にしました" in page
    assert session.get("/").status_code == 302
    refused = app.test_client().post("/login", data={"email": "staff2@example.jp", "password": PASSWORD})
    assert "このアカウントは無効になっています" in refused.get_data(as_text=True)
    client.post(f"/users/{staff.id}/enable")
    assert _logged_in(app, "staff2@example.jp").get("/").status_code == 200


def test_the_administrator_cannot_disable_their_own_account(app, client, auth):
    auth.login(email="owner@example.jp")
    me = _user(app, "owner@example.jp")
    page = client.post(f"/users/{me.id}/disable", follow_redirects=True).get_data(as_text=True)
    assert "自分のアカウントはここでは変更できません" in page
    assert _user(app, "owner@example.jp").disabled_at is None
    assert client.get("/").status_code == 200


def test_setting_a_new_password_ends_the_users_sessions(app, client, auth, make):
    staff = make.user(email="staff2@example.jp")
    session = _logged_in(app, "staff2@example.jp")
    auth.login(email="owner@example.jp")
    refused = client.post(f"/users/{staff.id}/password", data={"password": "11111111"}, follow_redirects=True)
    assert "パスワードは変更されていません" in refused.get_data(as_text=True)
    assert session.get("/").status_code == 200
    client.post(f"/users/{staff.id}/password", data={"password": NEW})
    assert session.get("/").status_code == 302
    _logged_in(app, "staff2@example.jp", NEW)


def test_everyone_changes_their_own_password_with_the_current_one(app, client, auth):
    auth.login(email="desk@example.jp", role="support")
    other_device = _logged_in(app, "desk@example.jp")
    wrong = client.post("/password", data={"current": "not it at all", "password": NEW, "confirm": NEW})
    assert "現在のパスワードが違います。" in wrong.get_data(as_text=True)
    assert other_device.get("/support").status_code == 200
    done = client.post("/password", data={"current": PASSWORD, "password": NEW, "confirm": NEW}, follow_redirects=True)
    assert "パスワードを変更しました" in done.get_data(as_text=True)
    assert client.get("/support").status_code == 200  # this session goes on
    assert other_device.get("/support").status_code == 302  # every other one ended
    assert _user(app, "desk@example.jp").check_password(NEW)
