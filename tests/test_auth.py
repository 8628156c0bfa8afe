"""Who can see what: first-run setup, login on every page, roles, CSRF, slowed-down guessing."""
from __future__ import annotations

import re

import pytest
from flask import Blueprint
from sqlalchemy import select

from tatenpo.models import Role, User
from tatenpo.platform import auth as auth_rules
from tatenpo.platform.extensions import db

from .conftest import PASSWORD


def _page_routes(app):
    """Every GET route of the app with its URL arguments filled in (1 for ids)."""
    routes = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in auth_rules.PUBLIC_ENDPOINTS:
            continue
        values = {arg: 1 if "id" in arg else "x" for arg in rule.arguments}
        try:
            with app.test_request_context():
                from flask import url_for

                routes.append(url_for(rule.endpoint, **values))
        except Exception:
            routes.append(rule.rule)
    return sorted(set(routes))


def test_first_visit_goes_to_setup(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/setup")


def test_static_files_stay_reachable_before_setup(client):
    assert client.get("/static/htmx.min.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200


def test_setup_creates_the_first_administrator_and_logs_in(client, app):
    page = client.get("/setup").get_data(as_text=True)
    assert "初期設定" in page
    response = client.post(
        "/setup", data={"email": "Owner@Example.jp", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/guide")
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.email == "owner@example.jp"
        assert user.password_hash != PASSWORD and user.check_password(PASSWORD)
    # Logged in now: the top page shows, in Japanese.
    assert "トップ" in client.get("/").get_data(as_text=True)


def test_setup_is_closed_once_a_user_exists(client, make):
    make.user()
    response = client.get("/setup")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    response = client.post("/setup", data={"email": "evil@example.jp", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302


def test_setup_with_mismatched_passwords_creates_nobody(client, app):
    response = client.post("/setup", data={"email": "a@example.jp", "password": PASSWORD, "confirm": "different!"})
    assert response.status_code == 200
    assert "パスワードが一致しません" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User)) is None


def test_every_page_requires_login(app, client, make):
    make.user()
    routes = _page_routes(app)
    assert len(routes) >= 9
    for path in routes:
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"], path


def test_login_and_logout(client, auth):
    response = auth.login()
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    auth.logout()
    assert client.get("/").status_code == 302


def test_login_with_a_wrong_password_is_refused_with_a_message(client, make):
    make.user(email="staff@example.jp")
    response = client.post("/login", data={"email": "staff@example.jp", "password": "wrong password"}, follow_redirects=True)
    assert "メールアドレスまたはパスワードが違います" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_redirect_never_leaves_the_site(client, make):
    make.user(email="staff@example.jp")
    response = client.post("/login?next=//evil.example/", data={"email": "staff@example.jp", "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_repeated_failed_logins_are_slowed_down(client, app, make):
    make.user(email="staff@example.jp")
    for _ in range(auth_rules.FREE_FAILURES + 1):
        client.post("/login", data={"email": "staff@example.jp", "password": "guess"})
    # Even the right password waits now, and says why.
    response = client.post("/login", data={"email": "staff@example.jp", "password": PASSWORD}, follow_redirects=True)
    assert "しばらく待ってから" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "staff@example.jp"))
        # Attempts refused while waiting never reach the password check, so they do not count.
        assert user.failed_logins == auth_rules.FREE_FAILURES


def test_support_pages_refuse_shop_staff(app, client, auth):
    blueprint = Blueprint("support_only_probe", __name__)

    @blueprint.route("/_probe/support-only")
    @auth_rules.role_required(Role.SUPPORT)
    def probe():
        return "support desk"

    app.register_blueprint(blueprint)
    auth.login(email="staff@example.jp", role="staff")
    assert client.get("/_probe/support-only").status_code == 403
    auth.logout()
    auth.login(email="desk@example.jp", role="support")
    assert client.get("/_probe/support-only").get_data(as_text=True) == "support desk"


def test_language_is_japanese_by_default_and_english_per_user(client, auth):
    auth.login()
    assert "在庫同期履歴" in client.get("/").get_data(as_text=True)
    client.post("/preferences", data={"locale": "en"})
    page = client.get("/").get_data(as_text=True)
    assert "Sync history" in page and "在庫同期履歴" not in page


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def test_forms_without_a_csrf_token_are_rejected(csrf_app, make):
    client = csrf_app.test_client()
    make.user(email="staff@example.jp")
    response = client.post("/login", data={"email": "staff@example.jp", "password": PASSWORD})
    assert response.status_code == 400
    assert "再読み込み" in response.get_data(as_text=True)


def test_htmx_requests_carry_the_csrf_token_from_the_page(csrf_app, make):
    client = csrf_app.test_client()
    make.user(email="staff@example.jp")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": "staff@example.jp", "password": PASSWORD}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 302


def test_pages_carry_security_headers(client):
    response = client.get("/setup")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_session_cookie_is_httponly_and_samesite(client, make):
    make.user(email="staff@example.jp")
    response = client.post("/login", data={"email": "staff@example.jp", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_cookies_are_secure_when_served_over_https(database_url, redis_url, tmp_path, monkeypatch):
    from tatenpo import create_app

    monkeypatch.setenv("HTTPS", "1")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "x.db"), "REDIS_URL": redis_url})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
