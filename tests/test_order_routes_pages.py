"""受注API on the screens, through real HTTP, the database, Redis and the sandbox: the store settings' order routes
(switch, poll interval, bad input, the administrator's only, poll now), a failed poll on the top page with the
mall's reason, the order page's mall status and sources, and guide step 2's order access per mall."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tatenpo.models import Order, Store
from tatenpo.orders import polling
from tatenpo.platform.extensions import db


@pytest.fixture
def remote_store(sandbox, make):
    remote = sandbox.create_store("rakuten", items=2)
    store = make.store("rakuten", name="楽天テスト店", endpoint=remote["endpoint"], secrets=remote["credentials"],
                       order_mail_address="order-9-zz@orders.tatenpo.local")
    return remote, store


def stored(app, store_id: int) -> Store:
    with app.app_context():
        store = db.session.get(Store, store_id)
        db.session.expunge(store)
        return store


def test_the_settings_show_every_route_and_switch_the_order_api_on_with_an_interval(app, client, auth, remote_store):
    _remote, store = remote_store
    auth.login(role="admin")
    page = client.get(f"/settings/stores/{store.id}").get_data(as_text=True)
    assert 'id="order-routes"' in page and 'id="route-mail"' in page and 'id="route-api"' in page
    assert "order-9-zz@orders.tatenpo.local" in page

    answer = client.post(f"/settings/stores/{store.id}/order-routes", data={"order_api": "1",
                                                                             "order_poll_seconds": "300"})

    assert answer.status_code == 302
    saved = stored(app, store.id)
    assert (saved.order_api, saved.order_poll_seconds) == (True, 300)
    page = client.get(f"/settings/stores/{store.id}").get_data(as_text=True)
    assert "300" in page


@pytest.mark.parametrize("interval", ["5", "abc", "100000"])
def test_a_bad_interval_is_refused_in_japanese_and_changes_nothing(app, client, auth, remote_store, interval):
    _remote, store = remote_store
    auth.login(role="admin")
    answer = client.post(f"/settings/stores/{store.id}/order-routes",
                         data={"order_api": "1", "order_poll_seconds": interval}, follow_redirects=True)
    assert answer.status_code == 200 and 'class="flash flash-error"' in answer.get_data(as_text=True)
    saved = stored(app, store.id)
    assert (saved.order_api, saved.order_poll_seconds) == (False, None)


def test_a_route_without_an_order_api_cannot_be_switched_on(app, client, auth, make):
    store = make.store("rakuten-ftp")
    auth.login(role="admin")
    page = client.post(f"/settings/stores/{store.id}/order-routes", data={"order_api": "1"},
                       follow_redirects=True).get_data(as_text=True)
    assert "受注API" in page or "order API" in page
    assert stored(app, store.id).order_api is False


def test_staff_may_not_change_the_order_routes(app, client, auth, remote_store):
    _remote, store = remote_store
    auth.login(email="clerk@example.jp", role="staff")
    answer = client.post(f"/settings/stores/{store.id}/order-routes", data={"order_api": "1"})
    assert answer.status_code == 403
    assert stored(app, store.id).order_api is False


def test_poll_now_reads_the_orders_and_the_order_page_shows_the_malls_status_and_sources(
        app, client, auth, sandbox, remote_store):
    remote, store = remote_store
    item = sandbox.items(remote["id"])[0]
    number = sandbox._call("POST", f"/_sandbox/stores/{remote['id']}/orders", json={
        "items": [{"code": item["code"], "variant": item["variant"], "quantity": 1}]}).json()["order_number"]
    auth.login(role="admin")
    client.post(f"/settings/stores/{store.id}/order-routes", data={"order_api": "1"})

    page = client.post(f"/settings/stores/{store.id}/order-routes/poll", follow_redirects=True).get_data(as_text=True)

    assert "flash-success" in page
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.number == number))
        order_id = order.id
    detail = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert 'id="mall-status"' in detail and "100 注文確認待ち" in detail
    assert "API" in detail
    listing = client.get("/orders").get_data(as_text=True)
    assert "100 注文確認待ち" in listing


def test_a_failed_poll_shows_on_the_top_page_with_the_malls_reason(app, client, auth, sandbox, remote_store):
    remote, store = remote_store
    with app.app_context():
        db.session.get(Store, store.id).order_api = True
        db.session.commit()
    sandbox.faults(remote["id"], auth="wrong")
    with app.app_context():
        assert not polling.poll(store.id).ok
    auth.login(role="admin")
    page = client.get("/").get_data(as_text=True)
    assert 'id="failing-order-polls"' in page and "ES01-01" in page and "楽天テスト店" in page
    sandbox.faults(remote["id"], auth="")
    with app.app_context():
        assert polling.poll(store.id).ok
    assert 'id="failing-order-polls"' not in client.get("/").get_data(as_text=True)


def test_guide_step_2_says_what_each_mall_needs_for_order_access(app, client, auth, make):
    auth.login(role="admin")
    make.application(malls=("amazon",))
    make.store("amazon")
    page = client.get("/guide").get_data(as_text=True)
    assert 'class="order-access"' in page and "Orders" in page or "注文" in page
