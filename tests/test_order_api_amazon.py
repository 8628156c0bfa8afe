"""Amazon SP-API Orders v0: the sandbox's getOrders/getOrderItems (real paths, NextToken, usage plans, FBA orders)
and the connector reading them (tatenpo.malls.amazon_orders) over real HTTP."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from tatenpo.malls import connector_for
from tatenpo.models import OrderStatus, utcnow


def connector(store, redis_client):
    return connector_for("amazon", store["endpoint"], store["credentials"], redis_client, 5, retries=2, backoff=0.1)


def buy(sandbox, store, quantity=1, item=0, fba=False):
    entry = sandbox.items(store["id"])[item]
    return sandbox._call("POST", f"/_sandbox/stores/{store['id']}/orders", json={
        "items": [{"code": entry["code"], "variant": entry["variant"], "quantity": quantity}], "fba": fba}).json()


def set_status(sandbox, store, number, status):
    return sandbox._call("POST", f"/_sandbox/stores/{store['id']}/orders/{number}/status", json={"status": status})


def get_orders(store, **params):
    return requests.get(f"{store['endpoint']}/orders/v0/orders", timeout=10,
                        params={"MarketplaceIds": "A1VC38T7YXB528", **params},
                        headers={"x-amz-access-token": store["credentials"]["access_token"]})


@pytest.fixture
def store(sandbox):
    store = sandbox.create_store("amazon", items=3)
    sandbox.set_stock(store["id"], [{"code": i["code"], "variant": i["variant"], "quantity": 20}
                                    for i in sandbox.items(store["id"])])
    return store


def test_get_orders_and_items_give_the_order_with_its_seller_sku(sandbox, store, redis_client):
    placed = buy(sandbox, store, quantity=2)
    item = placed["order"]["items"][0]

    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))

    assert (order.number, order.status, order.mall_status, order.moves_stock) == (
        placed["order_number"], OrderStatus.RECEIVED, "Unshipped", True)
    line, = order.lines
    assert (line.item_code, line.quantity, line.unit_price) == (item["code"], 2, item["price"])


def test_an_fba_order_is_reported_but_does_not_move_stock_and_the_malls_stock_stays(sandbox, store, redis_client):
    before = sandbox.stock(store["id"])
    placed = buy(sandbox, store, quantity=1, fba=True)

    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))

    assert order.number == placed["order_number"] and order.moves_stock is False
    assert sandbox.stock(store["id"]) == before


@pytest.mark.parametrize("status, expected", [("Canceled", OrderStatus.CANCELLED), ("Shipped", OrderStatus.SHIPPED),
                                              ("PartiallyShipped", OrderStatus.RECEIVED)])
def test_order_status_maps(sandbox, store, redis_client, status, expected):
    number = buy(sandbox, store)["order_number"]
    set_status(sandbox, store, number, status)
    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))
    assert (order.status, order.mall_status) == (expected, status)


def test_known_orders_are_read_without_their_items(sandbox, store, redis_client):
    number = buy(sandbox, store)["order_number"]
    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1), known={number})
    assert order.lines == ()
    assert [c["api"] for c in sandbox.calls(store["id"])].count("getOrderItems") == 0


def test_next_token_pages_keep_the_criteria(sandbox, store, redis_client):
    numbers = [buy(sandbox, store)["order_number"] for _ in range(3)]
    since = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first = get_orders(store, LastUpdatedAfter=since, MaxResultsPerPage=2).json()["payload"]
    second = get_orders(store, NextToken=first["NextToken"]).json()["payload"]
    assert [o["AmazonOrderId"] for o in first["Orders"] + second["Orders"]] == numbers
    assert "NextToken" not in second
    assert {o["FulfillmentChannel"] for o in first["Orders"]} == {"MFN"}


def test_get_orders_needs_a_date_and_the_marketplace(sandbox, store):
    assert get_orders(store).status_code == 400
    answer = requests.get(f"{store['endpoint']}/orders/v0/orders", params={"LastUpdatedAfter": "2026-01-01T00:00:00Z"},
                          headers={"x-amz-access-token": store["credentials"]["access_token"]}, timeout=10)
    assert answer.status_code == 400


def test_get_orders_has_a_burst_of_20_then_one_a_minute(sandbox, store):
    since = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    statuses = [get_orders(store, LastUpdatedAfter=since).status_code for _ in range(21)]
    assert statuses[:20] == [200] * 20 and statuses[20] == 429
