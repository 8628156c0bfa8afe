"""The Amazon SP-API Listings connector (patchListingsItem / getListingsItem) against the sandbox over real HTTP."""
from __future__ import annotations

import pytest
import requests

from tatenpo.malls import connector_for
from tatenpo.malls.base import HINT_ITEM, HINT_LOGIN, ItemRef, MallError, PushItem


def connector(store, redis_client, **options):
    options = {"retries": 2, "backoff": 0.1, **options}
    return connector_for("amazon", store["endpoint"], store["credentials"], redis_client, options.pop("timeout", 3), **options)


def test_push_each_sku_and_read_back(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=3)
    mall = connector(store, redis_client)
    items = [PushItem(n, i["code"], quantity=n + 1) for n, i in enumerate(sandbox.items(store["id"]))]
    assert all(r.ok for r in mall.push(items))
    assert sandbox.stock(store["id"]) == {(i.item_code, ""): i.quantity for i in items}
    assert {r.key: r.quantity for r in mall.read(items)} == {i.key: i.quantity for i in items}


def test_unknown_sku_is_accepted_but_read_back_says_it_is_missing(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=1)
    mall = connector(store, redis_client)
    assert mall.push([PushItem(1, "NOT-LISTED", quantity=2)])[0].ok
    read = mall.read([ItemRef(1, "NOT-LISTED")])[0]
    assert read.quantity is None and read.hint == HINT_ITEM and "NOT-LISTED" in read.message


def test_a_burst_of_12_skus_is_paced_under_5_per_second_without_429(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=12)
    items = [PushItem(n, i["code"], quantity=1) for n, i in enumerate(sandbox.items(store["id"])[:12])]
    assert all(r.ok for r in connector(store, redis_client, retries=0).push(items))
    calls = [c for c in sandbox.calls(store["id"]) if c["api"] == "patchListingsItem"]
    assert [c["status"] for c in calls] == [200] * 12


def test_invalid_quantity_comes_back_as_invalid_with_issues(sandbox):
    store = sandbox.create_store("amazon", items=1)
    response = requests.patch(
        f"{store['endpoint']}/listings/2021-08-01/items/{store['credentials']['seller_id']}/TT-0001",
        params={"marketplaceIds": "A1VC38T7YXB528"},
        headers={"x-amz-access-token": store["credentials"]["access_token"]},
        json={"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                                                      "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": -1}]}]},
        timeout=10)
    body = response.json()
    assert body["status"] == "INVALID" and body["issues"][0]["severity"] == "ERROR"
    assert response.headers["x-amzn-RateLimit-Limit"] == "5.0"


def test_a_negative_quantity_fails_that_item_without_a_call(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=1)
    result = connector(store, redis_client).push([PushItem(1, "TT-0001", quantity=-2)])[0]
    assert not result.ok and sandbox.calls(store["id"]) == []


def test_expired_token_without_a_refresh_token_is_named_with_the_login_hint(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=1)
    sandbox.faults(store["id"], auth="expired")
    only_token = dict(store, credentials={k: store["credentials"][k] for k in ("seller_id", "access_token")})
    check = connector(only_token, redis_client).check_login()
    assert not check.ok and check.hint == HINT_LOGIN and "expired" in check.message
    with pytest.raises(MallError) as caught:
        connector(only_token, redis_client).push([PushItem(1, "TT-0001", quantity=1)])
    assert not caught.value.transient


def test_an_expired_token_is_renewed_through_login_with_amazon(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=1)
    sandbox.faults(store["id"], auth="expired")
    assert connector(store, redis_client).push([PushItem(1, "TT-0001", quantity=23)])[0].ok
    assert connector(store, redis_client).read([ItemRef(1, "TT-0001")])[0].quantity == 23
    assert len([c for c in sandbox.calls(store["id"]) if c["api"] == "token"]) == 1


def test_a_revoked_refresh_token_stops_the_push_with_the_login_hint(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=1)
    sandbox.faults(store["id"], auth="revoked")
    with pytest.raises(MallError) as caught:
        connector(store, redis_client).push([PushItem(1, "TT-0001", quantity=1)])
    assert caught.value.hint == HINT_LOGIN and not caught.value.transient


@pytest.mark.parametrize("fault", ["error_5xx", "throttle", "maintenance", "timeout"])
def test_a_transient_failure_is_retried(sandbox, redis_client, fault):
    store = sandbox.create_store("amazon", items=1)
    sandbox.faults(store["id"], **{fault: 1}, hang_seconds=3)
    assert connector(store, redis_client, timeout=1).push([PushItem(1, "TT-0001", quantity=8)])[0].ok
    assert sandbox.stock(store["id"])[("TT-0001", "")] == 8


def test_an_outage_after_the_first_sku_fails_the_rest_without_knocking_per_sku(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=3)
    codes = [i["code"] for i in sandbox.items(store["id"])][:3]
    mall = connector(store, redis_client, retries=1)
    first = mall.push([PushItem(0, codes[0], quantity=1)])
    assert first[0].ok
    sandbox.faults(store["id"], maintenance=True)
    with pytest.raises(MallError):
        mall.push([PushItem(1, codes[1], quantity=1), PushItem(2, codes[2], quantity=1)])
    assert len([c for c in sandbox.calls(store["id"]) if c["status"] == 503]) == 2  # one SKU, one retry


def test_reflection_delay_keeps_the_old_quantity_visible_until_it_passes(sandbox, redis_client):
    import time

    store = sandbox.create_store("amazon", items=1)
    before = sandbox.stock(store["id"])[("TT-0001", "")]
    sandbox.faults(store["id"], reflection_delay=1)
    mall = connector(store, redis_client)
    assert mall.push([PushItem(1, "TT-0001", quantity=before + 4)])[0].ok
    assert mall.read([ItemRef(1, "TT-0001")])[0].quantity == before
    time.sleep(1.2)
    assert mall.read([ItemRef(1, "TT-0001")])[0].quantity == before + 4
