"""Yahoo!ショッピング 注文API: the sandbox's orderList/orderInfo (XML, real paths) and the connector reading them
(tatenpo.malls.yahoo_orders) over real HTTP."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import requests

from tatenpo.malls import connector_for
from tatenpo.malls.base import MallError
from tatenpo.models import OrderStatus, utcnow

from .sandbox_helpers import wait_for


def connector(store, redis_client):
    return connector_for("yahoo", store["endpoint"], store["credentials"], redis_client, 5, retries=2, backoff=0.1)


def buy(sandbox, store, quantity=1, item=0):
    entry = sandbox.items(store["id"])[item]
    return sandbox._call("POST", f"/_sandbox/stores/{store['id']}/orders", json={
        "items": [{"code": entry["code"], "variant": entry["variant"], "quantity": quantity}]}).json()


def set_status(sandbox, store, number, status):
    return sandbox._call("POST", f"/_sandbox/stores/{store['id']}/orders/{number}/status", json={"status": status})


def order_list(store, result: int, start: int) -> ET.Element:
    body = (f"<Req><Search><Result>{result}</Result><Start>{start}</Start><Condition>"
            f"<UpdateTimeFrom>20000101000000</UpdateTimeFrom></Condition><Field>OrderId</Field></Search>"
            f"<SellerId>{store['credentials']['seller_id']}</SellerId></Req>")
    answer = wait_for(lambda: a if (a := requests.post(
        f"{store['endpoint']}/ShoppingWebService/V1/orderList", data=body.encode(), timeout=10,
        headers={"Authorization": f"Bearer {store['credentials']['access_token']}"})).status_code != 403 else None,
        "an orderList answer")
    assert answer.status_code == 200
    return ET.fromstring(answer.content)


@pytest.fixture
def store(sandbox):
    store = sandbox.create_store("yahoo", items=3)
    sandbox.set_stock(store["id"], [{"code": i["code"], "variant": i["variant"], "quantity": 20}
                                    for i in sandbox.items(store["id"])])
    return store


def test_order_list_and_info_give_the_order_with_its_code_and_sub_code(sandbox, store, redis_client):
    placed = buy(sandbox, store, quantity=2)
    item = placed["order"]["items"][0]

    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))

    assert order.number == placed["order_number"]
    assert (order.status, order.mall_status) == (OrderStatus.RECEIVED, "2 処理中 / 出荷可")
    line, = order.lines
    assert (line.item_code, line.variant_code, line.quantity) == (item["code"], item["variant"], 2)
    assert order.updated_at is not None and order.ordered_at is not None


@pytest.mark.parametrize("status, expected", [("4", OrderStatus.CANCELLED), ("5", OrderStatus.SHIPPED),
                                              ("shipped", OrderStatus.SHIPPED), ("3", OrderStatus.RECEIVED)])
def test_order_status_and_ship_status_map_to_the_order_status(sandbox, store, redis_client, status, expected):
    number = buy(sandbox, store)["order_number"]
    set_status(sandbox, store, number, status)

    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))

    assert order.status == expected


def test_the_search_is_by_update_time(sandbox, store, redis_client):
    number = buy(sandbox, store)["order_number"]
    later = utcnow() + timedelta(seconds=1)
    assert connector(store, redis_client).read_orders(later + timedelta(seconds=1)) == []
    set_status(sandbox, store, number, "5")  # updated now: found from a cursor after its purchase
    wait_for(lambda: [o for o in connector(store, redis_client).read_orders(later - timedelta(seconds=2))
                      if o.status == OrderStatus.SHIPPED], "the shipped order by its update time")


def test_order_list_pages_with_result_and_start(sandbox, store):
    numbers = [buy(sandbox, store)["order_number"] for _ in range(3)]
    first, second = order_list(store, 2, 1), order_list(store, 2, 3)
    assert first.findtext(".//TotalCount") == "3"
    assert [e.findtext("OrderId") for e in first.iter("OrderInfo")] == numbers[:2]
    assert [e.findtext("OrderId") for e in second.iter("OrderInfo")] == numbers[2:]


def test_an_expired_token_is_the_login_reason(sandbox, store, redis_client):
    sandbox.faults(store["id"], auth="revoked")
    with pytest.raises(MallError) as caught:
        connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))
    assert not caught.value.transient


def test_known_orders_come_from_the_list_alone(sandbox, store, redis_client):
    number = buy(sandbox, store)["order_number"]
    set_status(sandbox, store, number, "5")
    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1), known={number})
    assert (order.number, order.status, order.lines) == (number, OrderStatus.SHIPPED, ())
    assert [c["api"] for c in sandbox.calls(store["id"])].count("orderInfo") == 0
