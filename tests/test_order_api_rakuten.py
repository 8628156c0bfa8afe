"""楽天 RMS 受注API: the sandbox's searchOrder/getOrder at the real paths and shapes, and the connector reading them
(tatenpo.malls.rakuten_orders) over real HTTP."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import requests

from tatenpo.malls import connector_for
from tatenpo.malls.base import MallError
from tatenpo.models import OrderStatus, utcnow

from .sandbox_helpers import wait_for


def connector(store, redis_client):
    return connector_for("rakuten", store["endpoint"], store["credentials"], redis_client, 5, retries=2, backoff=0.1)


def buy(sandbox, store, quantity=1, item=0):
    entry = sandbox.items(store["id"])[item]
    return sandbox._call("POST", f"/_sandbox/stores/{store['id']}/orders", json={
        "items": [{"code": entry["code"], "variant": entry["variant"], "quantity": quantity}]}).json()


def set_status(sandbox, store, number, status):
    return sandbox._call("POST", f"/_sandbox/stores/{store['id']}/orders/{number}/status", json={"status": status})


def rms(sandbox, store, api, body):
    import base64
    token = base64.b64encode(f"{store['credentials']['service_secret']}:{store['credentials']['license_key']}".encode())
    # 1 request/s per API: a call the sandbox refuses as too soon is asked again.
    return wait_for(lambda: answer if (answer := requests.post(
        f"{store['endpoint']}/es/2.0/order/{api}", json=body, timeout=10,
        headers={"Authorization": f"ESA {token.decode()}", "Content-Type": "application/json"})).status_code != 429
        else None, f"an answer from {api}")


def jst(value: datetime) -> str:
    return (value + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S+0900")


@pytest.fixture
def store(sandbox):
    store = sandbox.create_store("rakuten", items=3)
    sandbox.set_stock(store["id"], [{"code": i["code"], "variant": i["variant"], "quantity": 20}
                                    for i in sandbox.items(store["id"])])
    return store


def test_search_and_get_give_the_order_with_its_sku_and_progress(sandbox, store, redis_client):
    placed = buy(sandbox, store, quantity=2)
    number = placed["order_number"]
    item = placed["order"]["items"][0]

    orders = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))

    assert [o.number for o in orders] == [number]
    order = orders[0]
    assert (order.status, order.mall_status, order.moves_stock) == (OrderStatus.RECEIVED, "100 注文確認待ち", True)
    line = order.lines[0]
    assert (line.item_code, line.variant_code, line.quantity, line.title) == (
        item["code"], item["variant"], 2, item["title"])
    assert order.ordered_at is not None and abs(order.ordered_at - utcnow()) < timedelta(minutes=5)


@pytest.mark.parametrize("progress, status", [("300", OrderStatus.RECEIVED), ("500", OrderStatus.SHIPPED),
                                              ("700", OrderStatus.SHIPPED), ("800", OrderStatus.CANCELLED),
                                              ("900", OrderStatus.CANCELLED)])
def test_order_progress_maps_to_the_order_status(sandbox, store, redis_client, progress, status):
    number = buy(sandbox, store)["order_number"]
    set_status(sandbox, store, number, progress)

    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))

    assert order.status == status and order.mall_status.startswith(progress)


def test_an_open_order_outside_the_search_window_is_read_again_by_number(sandbox, store, redis_client):
    number = buy(sandbox, store)["order_number"]
    set_status(sandbox, store, number, "500")

    # The cursor is past the order's 注文日: only the open-number reread finds its shipping.
    orders = connector(store, redis_client).read_orders(utcnow() + timedelta(minutes=1), open_numbers=[number])

    assert [(o.number, o.status) for o in orders] == [(number, OrderStatus.SHIPPED)]


def test_search_pages_through_more_than_one_page(sandbox, store, redis_client):
    numbers = [buy(sandbox, store)["order_number"] for _ in range(3)]
    now = utcnow()
    first = rms(sandbox, store, "searchOrder", {
        "dateType": 1, "startDatetime": jst(now - timedelta(hours=1)), "endDatetime": jst(now + timedelta(minutes=1)),
        "PaginationRequestModel": {"requestRecordsAmount": 30, "requestPage": 1}}).json()
    assert first["orderNumberList"] == numbers
    assert first["PaginationResponseModel"] == {"totalRecordsAmount": 3, "totalPages": 1, "requestPage": 1}
    assert first["MessageModelList"][0]["messageType"] == "INFO"


def test_a_period_over_63_days_is_an_error_inside_a_200_answer(sandbox, store):
    now = utcnow()
    answer = rms(sandbox, store, "searchOrder", {
        "dateType": 1, "startDatetime": jst(now - timedelta(days=64)), "endDatetime": jst(now)})
    assert answer.status_code == 200
    message, = answer.json()["MessageModelList"]
    assert message["messageType"] == "ERROR" and "63" in message["message"]


def test_get_order_refuses_more_than_100_numbers_inside_a_200_answer(sandbox, store):
    answer = rms(sandbox, store, "getOrder", {"orderNumberList": [f"n{i}" for i in range(101)], "version": 7})
    assert answer.status_code == 200 and answer.json()["MessageModelList"][0]["messageType"] == "ERROR"


def test_get_order_without_version_7_has_no_sku_models(sandbox, store):
    number = buy(sandbox, store)["order_number"]
    old = rms(sandbox, store, "getOrder", {"orderNumberList": [number], "version": 6}).json()
    new = rms(sandbox, store, "getOrder", {"orderNumberList": [number], "version": 7}).json()
    item_old = old["OrderModelList"][0]["PackageModelList"][0]["ItemModelList"][0]
    item_new = new["OrderModelList"][0]["PackageModelList"][0]["ItemModelList"][0]
    assert "SkuModelList" not in item_old and item_new["SkuModelList"][0]["variantId"]


def test_a_message_model_error_is_raised_with_rmss_reason(sandbox, store, redis_client, monkeypatch):
    from tatenpo.malls import rakuten_orders

    monkeypatch.setattr(rakuten_orders, "MAX_DAYS", 70)  # the connector asks a wider period than RMS allows
    with pytest.raises(MallError) as caught:
        connector(store, redis_client).read_orders(utcnow() - timedelta(days=69))
    assert "63" in caught.value.message and not caught.value.transient
    assert caught.value.code.startswith("ORDER_EXT_API_SEARCH_ORDER_ERROR")


def test_a_wrong_licence_key_fails_with_the_login_reason(sandbox, store, redis_client):
    wrong = dict(store, credentials=dict(store["credentials"], license_key="SL_wrong"))
    with pytest.raises(MallError) as caught:
        connector(wrong, redis_client).read_orders(utcnow() - timedelta(hours=1))
    assert caught.value.code == "ES01-01"


def test_the_admin_status_endpoint_refuses_unknown_statuses_numbers_and_moves_back(sandbox, store):
    number = buy(sandbox, store)["order_number"]
    url = f"{sandbox.url}/_sandbox/stores/{store['id']}/orders"
    unknown = requests.post(f"{url}/{number}/status", json={"status": "999"}, timeout=10)
    assert unknown.status_code == 400 and "100" in unknown.json()["error"]
    assert requests.post(f"{url}/no-such/status", json={"status": "500"}, timeout=10).status_code == 404
    assert set_status(sandbox, store, number, "300").json()["order"]["mall_status"] == "300"  # still to ship
    set_status(sandbox, store, number, "500")
    again = requests.post(f"{url}/{number}/status", json={"status": "900"}, timeout=10)
    assert again.status_code == 409
    order, = [o for o in sandbox._call("GET", f"/_sandbox/stores/{store['id']}/orders").json()["orders"]
              if o["number"] == number]
    assert (order["status"], order["mall_status"]) == ("shipped", "500")


def test_the_store_page_offers_cancel_and_ship(sandbox, store):
    number = buy(sandbox, store)["order_number"]
    page = requests.get(f"{sandbox.url}/stores/{store['id']}", timeout=10).text
    assert f"/orders/{number}/cancel" in page and f"/orders/{number}/ship" in page and "(100)" in page
