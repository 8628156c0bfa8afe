"""Who may do what: every route of the app against every role — 403 exactly where the role may not go —,
the menu each role sees, the friendly 403 page, and support never deciding its own application."""
from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet
from flask import url_for
from sqlalchemy import select

from tatenpo import create_app
from tatenpo.models import SupportApplication
from tatenpo.platform import auth as auth_rules
from tatenpo.platform.extensions import db

from .conftest import PASSWORD

ROLES = ("admin", "staff", "support")


def _expected(endpoint: str) -> set[str]:
    """The roles that may use an endpoint, as the shop's rules state them (not read from the app's map)."""
    area = endpoint.split(".")[0]
    if area == "auth":
        return set(ROLES)
    if area in ("settings", "users", "authorize", "order_routes"):  # stores, their credentials and routes
        return {"admin"}
    if endpoint in ("support.complete", "support.return_"):
        return {"support"}
    if endpoint in ("support.index", "support.detail", "support.outbox", "support.message"):
        return set(ROLES)
    return {"admin", "staff"}


def _routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, path) for every rule of the app, its arguments filled in (1 for ids)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": os.environ.get("REDIS_URL", "redis://"),
                      "SECRET_KEY": "routes", "CREDENTIAL_KEY": Fernet.generate_key().decode(), "SERVER_NAME": None})
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in auth_rules.PUBLIC_ENDPOINTS:
            continue
        method = "GET" if "GET" in rule.methods else "POST"
        values = {arg: 1 if "id" in arg else "x" for arg in rule.arguments}
        with app.test_request_context():
            path = url_for(rule.endpoint, **values)
        routes.append((rule.endpoint, method, path))
    return sorted(set(routes))


ROUTES = _routes()


def test_every_route_is_covered():
    endpoints = {endpoint for endpoint, _method, _path in ROUTES}
    assert {"settings.stores", "users.index", "support.complete", "stock.save", "sync.export"} <= endpoints
    # A new screen must be placed in the map (platform.auth.ACCESS) by its blueprint or itself.
    unmapped = sorted(e for e in endpoints if e not in auth_rules.ACCESS and e.rpartition(".")[0] not in auth_rules.ACCESS)
    assert unmapped == []


@pytest.fixture(scope="module")
def clients(redis_url, tmp_path_factory):
    """One app for the module and a logged-in client per role: 200 requests need no 200 fresh databases."""
    folder = tmp_path_factory.mktemp("roles")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(folder / "roles.db"),
                      "REDIS_URL": redis_url, "SECRET_KEY": "roles", "CREDENTIAL_KEY": Fernet.generate_key().decode(),
                      "WTF_CSRF_ENABLED": False, "SERVER_NAME": None})
    with app.app_context():
        db.create_all()
        for role in ROLES:
            auth_rules.create_user(f"{role}@example.jp", PASSWORD, role=role)
        db.session.commit()

    def logged_in(role):
        client = app.test_client()
        assert client.post("/login", data={"email": f"{role}@example.jp", "password": PASSWORD}).status_code == 302
        return client

    yield {role: logged_in(role) for role in ROLES}, logged_in
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint,method,path", ROUTES, ids=[f"{m} {p}" for _e, m, p in ROUTES])
def test_each_role_gets_403_exactly_where_it_may_not_go(clients, role, endpoint, method, path):
    by_role, logged_in = clients
    response = by_role[role].open(path, method=method)
    if endpoint == "auth.logout":
        by_role[role] = logged_in(role)  # logging out ends the session: the next route needs a new one
    if role in _expected(endpoint):
        assert response.status_code != 403, (role, method, path)
    else:
        assert response.status_code == 403, (role, method, path)
        assert "お使いの権限では開けません" in response.get_data(as_text=True)
    if endpoint != "auth.logout":  # still logged in: a "never 403" must not be a bounce to the login page
        assert response.status_code != 401 and not response.headers.get("Location", "").startswith("/login")


def test_each_role_sees_only_its_menu(client, auth):
    auth.login(email="desk@example.jp", role="support")
    page = client.get("/support").get_data(as_text=True)
    assert 'href="/support"' in page and 'href="/products"' not in page and 'href="/settings/stores"' not in page
    assert 'class="brand" href="/support"' in page
    auth.logout()
    auth.login(email="staff@example.jp", role="staff")
    page = client.get("/").get_data(as_text=True)
    assert 'href="/products"' in page and 'href="/settings/stores"' not in page and 'href="/users"' not in page
    auth.logout()
    auth.login(email="owner@example.jp", role="admin")
    page = client.get("/").get_data(as_text=True)
    assert 'href="/settings/stores"' in page and 'href="/users"' in page


def test_support_lands_on_the_support_center_and_never_on_shop_pages(client, make):
    make.user(email="desk@example.jp", role="support")
    response = client.post("/login?next=/products", data={"email": "desk@example.jp", "password": "correct horse battery"})
    assert response.headers["Location"] == "/support"


def test_support_never_decides_an_application_it_applied_for(app, client, auth, make):
    desk = make.user(email="desk@example.jp", role="support")
    own = make.application(status="pending", applicant_id=desk.id)
    other = make.application(status="pending")
    auth.login(email="desk@example.jp", role="support")
    assert client.post(f"/support/applications/{own.id}/complete").status_code == 403
    assert client.post(f"/support/applications/{own.id}/return", data={"comment": "x"}).status_code == 403
    assert client.post(f"/support/applications/{other.id}/complete").status_code == 302
    with app.app_context():
        statuses = dict(db.session.execute(select(SupportApplication.id, SupportApplication.status)).all())
    assert statuses == {own.id: "pending", other.id: "completed"}
