"""Shopify's GraphQL `orders` catch-up query: the sandbox's answer (updated_at filter, cursor pagination) and the
connector reading it (tatenpo.malls.shopify_orders) over real HTTP."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from tatenpo.malls import connector_for
from tatenpo.malls.shopify import API_VERSION
from tatenpo.malls.shopify_orders import ORDERS
from tatenpo.models import OrderStatus, utcnow


def connector(store, redis_client):
    return connector_for("shopify", store["endpoint"], store["credentials"], redis_client, 5, retries=2, backoff=0.1)


def buy(sandbox, store, quantity=1, item=0):
    entry = sandbox.items(store["id"])[item]
    return sandbox._call("POST", f"/_sandbox/stores/{store['id']}/orders", json={
        "items": [{"code": entry["code"], "variant": entry["variant"], "quantity": quantity}]}).json()


def set_status(sandbox, store, number, status):
    return sandbox._call("POST", f"/_sandbox/stores/{store['id']}/orders/{number.replace('#', '%23')}/status",
                         json={"status": status})


def graphql(store, variables):
    return requests.post(f"{store['endpoint']}/admin/api/{API_VERSION}/graphql.json", timeout=10,
                         json={"query": ORDERS, "variables": variables},
                         headers={"X-Shopify-Access-Token": store["credentials"]["access_token"]}).json()


@pytest.fixture
def store(sandbox):
    store = sandbox.create_store("shopify", items=3)
    sandbox.set_stock(store["id"], [{"code": i["code"], "variant": i["variant"], "quantity": 20}
                                    for i in sandbox.items(store["id"])])
    return store


def test_orders_query_gives_the_order_by_its_name_with_skus(sandbox, store, redis_client):
    placed = buy(sandbox, store, quantity=2)
    item = placed["order"]["items"][0]

    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))

    assert (order.number, order.status, order.mall_status) == (placed["order_number"], OrderStatus.RECEIVED,
                                                               "UNFULFILLED")
    assert order.number.startswith("#")
    line, = order.lines
    assert (line.item_code, line.quantity) == (item["sku"] or item["code"], 2)


@pytest.mark.parametrize("status, expected", [("cancelled", OrderStatus.CANCELLED), ("FULFILLED", OrderStatus.SHIPPED)])
def test_cancelled_and_fulfilled_orders(sandbox, store, redis_client, status, expected):
    number = buy(sandbox, store)["order_number"]
    set_status(sandbox, store, number, status)
    order, = connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))
    assert order.status == expected


def test_the_updated_at_filter_and_cursor_pagination(sandbox, store, redis_client):
    numbers = [buy(sandbox, store)["order_number"] for _ in range(3)]
    since = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first = graphql(store, {"first": 2, "query": f"updated_at:>='{since}'"})["data"]["orders"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = graphql(store, {"first": 2, "after": first["pageInfo"]["endCursor"],
                           "query": f"updated_at:>='{since}'"})["data"]["orders"]
    assert [n["name"] for n in first["nodes"] + rest["nodes"]] == numbers
    future = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert graphql(store, {"first": 2, "query": f"updated_at:>'{future}'"})["data"]["orders"]["nodes"] == []
    assert [o.number for o in connector(store, redis_client).read_orders(utcnow() - timedelta(hours=1))] == numbers
