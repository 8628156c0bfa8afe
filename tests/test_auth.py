"""Who can see what: first-run setup, login on every page, roles, CSRF, slowed-down guessing."""
from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from tatenpo.models import User, utcnow
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


def test_setup_is_closed_once_a_user_exists(app, client, make):
    first = make.user()
    response = client.get("/setup")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    # Posting the form anyway creates no administrator: the only user is still the first one.
    response = client.post("/setup", data={"email": "evil@example.jp", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    with app.app_context():
        assert db.session.scalars(select(User.email)).all() == [first.email]


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


@pytest.mark.parametrize("target", [
    "//evil.example/", "/%09/evil.example", "/%0d%0aX:1", "//evil", "/%5Cevil", "https://evil", "/%2F%2Fevil",
    "/%252F%252Fevil", "/\\evil", "javascript:alert(1)", "/%E3%80%80/evil",
])
def test_login_redirect_never_leaves_the_site(client, make, target):
    make.user(email="staff@example.jp")
    response = client.post(f"/login?next={target}", data={"email": "staff@example.jp", "password": PASSWORD})
    assert response.status_code == 302, target
    assert response.headers["Location"] == "/", target


def test_login_returns_to_the_page_that_asked_for_it(client, make):
    make.user(email="staff@example.jp")
    response = client.post("/login?next=/products%3Fq%3Da%2520b", data={"email": "staff@example.jp", "password": PASSWORD})
    assert response.headers["Location"] == "/products?q=a%20b"


def _attempt(app, email, password, address="10.0.0.9"):
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": password},
                           environ_base={"REMOTE_ADDR": address})
    return response


def test_repeated_failed_logins_are_slowed_down(client, app, make):
    make.user(email="staff@example.jp")
    for _ in range(auth_rules.FREE_FAILURES + 1):
        client.post("/login", data={"email": "staff@example.jp", "password": "guess"})
    # From this address even the right password waits now, and says why.
    response = client.post("/login", data={"email": "staff@example.jp", "password": PASSWORD}, follow_redirects=True)
    assert "しばらく待ってから" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    with app.app_context():
        # Attempts refused while waiting never reach the password check, so they do not count.
        assert auth_rules.counts("staff@example.jp", "127.0.0.1")["pair"] == auth_rules.FREE_FAILURES


def test_parallel_wrong_guesses_are_all_counted(app, make):
    make.user(email="staff@example.jp")
    guesses = 12
    barrier = threading.Barrier(guesses)

    def guess(n):
        barrier.wait()
        return _attempt(app, "staff@example.jp", f"guess {n}").get_data(as_text=True)

    with ThreadPoolExecutor(guesses) as pool:
        pages = list(pool.map(guess, range(guesses)))
    checked = sum("メールアドレスまたはパスワードが違います" in page for page in pages)
    waited = sum("しばらく待ってから" in page for page in pages)
    assert checked + waited == guesses
    # Every password checked is counted, and no more than the free ones (plus the one a slow try may take).
    assert auth_rules.FREE_FAILURES <= checked <= auth_rules.FREE_FAILURES + 1
    with app.app_context():
        counted = auth_rules.counts("staff@example.jp", "10.0.0.9")
    assert counted["pair"] == checked and counted["account"] == checked and counted["address"] == checked


def test_the_right_password_from_another_address_logs_in_during_an_attack(app, make):
    make.user(email="staff@example.jp")
    for n in range(auth_rules.ACCOUNT_ALERT + 5):
        _attempt(app, "staff@example.jp", f"guess {n}", address=f"10.1.{n // 200}.{n % 200 + 1}")
    _attempt(app, "staff@example.jp", "guess", address="10.0.0.66")
    assert "しばらく待ってから" in _attempt(app, "staff@example.jp", PASSWORD, address="10.0.0.66").get_data(as_text=True)
    owner = app.test_client()
    response = owner.post("/login", data={"email": "staff@example.jp", "password": PASSWORD},
                          environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert response.status_code == 302
    assert owner.get("/", environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code == 200


def test_one_address_guessing_many_accounts_is_capped_for_that_address_only(app, make):
    make.user(email="staff@example.jp")
    for n in range(auth_rules.ADDRESS_LIMIT):
        _attempt(app, f"person{n}@example.jp", "guess", address="10.0.0.7")
    page = _attempt(app, "staff@example.jp", PASSWORD, address="10.0.0.7").get_data(as_text=True)
    assert "お使いの接続元からのログイン試行が多すぎます" in page
    assert re.search(r"\d+ 秒待って", page)
    assert _attempt(app, "staff@example.jp", PASSWORD, address="10.0.0.8").status_code == 302


def test_forwarded_for_is_believed_only_behind_a_trusted_proxy(app, make):
    make.user(email="staff@example.jp")
    client = app.test_client()
    for n in range(auth_rules.FREE_FAILURES + 1):
        client.post("/login", data={"email": "staff@example.jp", "password": "guess"},
                    headers={"X-Forwarded-For": f"198.51.100.{n}"})
    # Without TRUST_PROXY a made-up header changes nothing: this is still the same address, waiting.
    response = client.post("/login", data={"email": "staff@example.jp", "password": PASSWORD},
                           headers={"X-Forwarded-For": "198.51.100.200"})
    assert "しばらく待ってから" in response.get_data(as_text=True)


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(database_url, redis_url, tmp_path, make):
    from cryptography.fernet import Fernet

    from tatenpo import create_app

    proxied = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "proxy.db"), "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret", "CREDENTIAL_KEY": Fernet.generate_key().decode(), "WTF_CSRF_ENABLED": False,
        "TRUST_PROXY": True,
    })
    with proxied.app_context():
        db.create_all()
        auth_rules.create_user("owner@example.jp", PASSWORD)
        db.session.commit()
    client = proxied.test_client()
    for _ in range(auth_rules.FREE_FAILURES):
        client.post("/login", data={"email": "owner@example.jp", "password": "guess"},
                    headers={"X-Forwarded-For": "203.0.113.5"})
    with proxied.app_context():
        assert auth_rules.counts("owner@example.jp", "203.0.113.5")["pair"] == auth_rules.FREE_FAILURES
    response = client.post("/login", data={"email": "owner@example.jp", "password": PASSWORD},
                           headers={"X-Forwarded-For": "203.0.113.6"})
    assert response.status_code == 302
    with proxied.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def test_unknown_and_known_emails_get_identical_answers(app, make):
    make.user(email="staff@example.jp")

    def answers(email):
        pages = []
        for n in range(auth_rules.FREE_FAILURES + 2):
            response = _attempt(app, email, f"guess {n}", address="10.0.0.5" if "staff" in email else "10.0.0.6")
            page = response.get_data(as_text=True).replace(email, "EMAIL")
            pages.append((response.status_code, re.sub(r'"X-CSRFToken": "[^"]+"', "TOKEN", page)))
        return pages

    known, unknown = answers("staff@example.jp"), answers("nobody@example.jp")
    assert known == unknown
    assert "メールアドレスまたはパスワードが違います" in known[0][1] and "しばらく待ってから" in known[-1][1]


def test_a_disabled_user_cannot_log_in(app, client, make):
    user = make.user(email="gone@example.jp")
    with app.app_context():
        db.session.get(User, user.id).disabled_at = utcnow()
        db.session.commit()
    page = client.post("/login", data={"email": "gone@example.jp", "password": PASSWORD}).get_data(as_text=True)
    assert "このアカウントは無効になっています" in page
    assert client.get("/").status_code == 302


def test_a_copied_session_cookie_stops_working_after_logout(app, client, auth):
    auth.login()
    cookie = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/").status_code == 200
    auth.logout()
    assert thief.get("/").status_code == 302


def test_htmx_without_a_session_goes_to_the_login_page_not_into_the_row(client, make):
    make.user()
    response = client.get("/products/1/row", headers={
        "HX-Request": "true", "HX-Current-URL": "http://localhost/products?q=%E3%82%B7%E3%83%A3%E3%83%84&page=2",
    })
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/products?q%3D%25E3%2582%25B7%25E3%2583%25A3%25E3%2583%2584%26page%3D2"
    assert response.get_data(as_text=True) == ""
    foreign = client.post("/products/1/stock", headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example//x"})
    assert foreign.status_code == 401 and foreign.headers["HX-Redirect"] == "/login"


def test_the_first_administrator_and_create_user_default_to_admin(client, app, runner):
    client.post("/setup", data={"email": "owner@example.jp", "password": PASSWORD, "confirm": PASSWORD})
    result = runner.invoke(args=["create-user", "second@example.jp", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert {u.email: u.role for u in db.session.scalars(select(User))} == {
            "owner@example.jp": "admin", "second@example.jp": "admin",
        }


@pytest.mark.parametrize("password,message", [
    ("password123", "真っ先に試される"), ("qwertyuiop", "真っ先に試される"), ("1qaz2wsx", "真っ先に試される"),
    ("sakura2024!", "真っ先に試される"), ("Doraemon1", "真っ先に試される"), ("aaaaaaaaaa", "同じ文字"),
    ("１１１１１１１１", "同じ文字"), ("short", "8文字以上"),
])
def test_common_and_repeated_passwords_are_refused(client, app, password, message):
    page = client.post("/setup", data={"email": "owner@example.jp", "password": password, "confirm": password})
    assert page.status_code == 200 and message in page.get_data(as_text=True), password
    with app.app_context():
        assert db.session.scalar(select(User)) is None


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


@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
def test_the_login_cookie_is_httponly_samesite_and_secure_exactly_when_served_over_https(https, monkeypatch, request):
    # HTTPS is read from the environment when the app is made: set it before the app fixture runs.
    if https:
        monkeypatch.setenv("HTTPS", "1")
    else:
        monkeypatch.delenv("HTTPS", raising=False)
    request.getfixturevalue("make").user(email="staff@example.jp")
    client = request.getfixturevalue("client")
    response = client.post("/login", data={"email": "staff@example.jp", "password": PASSWORD},
                           base_url="https://localhost" if https else "http://localhost")
    assert response.status_code == 302
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes and attributes["samesite"] == "SameSite=Lax"
    assert ("secure" in attributes) is https
