"""The Amazon SP-API Listings connector (patchListingsItem / getListingsItem) against the sandbox over real HTTP."""
from __future__ import annotations

import pytest
import requests

from tatenpo.malls import connector_for
from tatenpo.malls.base import HINT_ITEM, HINT_LOGIN, ItemRef, MallError, PushItem

from .sandbox_helpers import logged_calls


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
    # The fault was really served, then the retry succeeded; the call that hung (the client gave up after 1 s)
    # is logged when it ends, as 504, after the retry.
    calls = logged_calls(sandbox, store["id"], 2)
    served = {"error_5xx": [500, 200], "throttle": [429, 200], "maintenance": [503, 200], "timeout": [200, 504]}
    assert [c["status"] for c in calls] == served[fault]
    if fault == "throttle":
        # The 429 said Retry-After: 1 (the sandbox's throttle always does): no retry before that, although
        # the backoff (0.1 s) and Amazon's pace (5 a second) alone would have sent it sooner.
        assert calls[1]["at"] - calls[0]["at"] >= 1


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


def test_an_expired_token_is_said_in_details_as_sp_api_does(sandbox):
    store = sandbox.create_store("amazon", items=1)
    sandbox.faults(store["id"], auth="expired")
    response = requests.get(
        f"{store['endpoint']}/listings/2021-08-01/items/{store['credentials']['seller_id']}/TT-0001",
        params={"marketplaceIds": "A1VC38T7YXB528"},
        headers={"x-amz-access-token": store["credentials"]["access_token"]}, timeout=10)
    error = response.json()["errors"][0]
    assert response.status_code == 403 and error["code"] == "Unauthorized"
    assert error["message"] == "Access to requested resource is denied."
    assert error["details"] == "The access token you provided has expired."


def test_a_store_with_the_refresh_trio_but_no_access_token_fetches_one_before_the_first_call(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=1)
    trio = dict(store, credentials={k: v for k, v in store["credentials"].items() if k != "access_token"})
    assert connector(trio, redis_client).push([PushItem(1, "TT-0001", quantity=12)])[0].ok
    assert sandbox.stock(store["id"])[("TT-0001", "")] == 12
    calls = sandbox.calls(store["id"])
    assert [c["api"] for c in calls] == ["token", "patchListingsItem"]  # no call went out with an empty token
    assert calls[1]["status"] == 200


def test_a_token_fetched_before_is_renewed_ahead_of_its_expiry_not_after_a_refusal(sandbox, redis_client):
    from tatenpo.malls import tokens as token_cache

    store = sandbox.create_store("amazon", items=1)
    sandbox.faults(store["id"], auth="expired")
    mall = connector(store, redis_client)
    assert mall.push([PushItem(1, "TT-0001", quantity=3)])[0].ok  # the entered token expired: one renewal
    tokens = mall.tokens
    # The fetched token's cache ran out (in Redis and in this process): it is within EARLY_SECONDS of expiry.
    redis_client.delete(tokens.key)
    token_cache._local.pop(tokens.key, None)
    assert connector(store, redis_client).push([PushItem(1, "TT-0001", quantity=4)])[0].ok
    statuses = [(c["api"], c["status"]) for c in sandbox.calls(store["id"])]
    # The second push renewed first and went through at once: the stale entered token was not tried again.
    assert statuses[-2:] == [("token", 200), ("patchListingsItem", 200)]
    assert len([s for s in statuses if s == ("patchListingsItem", 403)]) == 1


def test_a_quantity_push_keeps_the_handling_time_and_the_restock_date(sandbox, redis_client):
    store = sandbox.create_store("amazon", items=1)
    url = f"{store['endpoint']}/listings/2021-08-01/items/{store['credentials']['seller_id']}/TT-0001"
    headers = {"x-amz-access-token": store["credentials"]["access_token"]}
    set_dates = {"productType": "PRODUCT", "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability",
                 "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 0, "lead_time_to_ship_max_days": 5,
                            "restock_date": "2026-09-01"}]}]}
    assert requests.patch(url, params={"marketplaceIds": "A1VC38T7YXB528"}, headers=headers, json=set_dates,
                          timeout=10).json()["status"] == "ACCEPTED"
    assert connector(store, redis_client).push([PushItem(1, "TT-0001", quantity=9)])[0].ok
    entry = requests.get(url, params={"marketplaceIds": "A1VC38T7YXB528", "includedData": "attributes"},
                         headers=headers, timeout=10).json()["attributes"]["fulfillment_availability"][0]
    assert (entry["quantity"], entry["lead_time_to_ship_max_days"], entry["restock_date"]) == (9, 5, "2026-09-01")


def test_the_sandbox_drops_the_handling_time_under_replace_as_amazon_does(sandbox):
    store = sandbox.create_store("amazon", items=1)
    url = f"{store['endpoint']}/listings/2021-08-01/items/{store['credentials']['seller_id']}/TT-0001"
    headers = {"x-amz-access-token": store["credentials"]["access_token"]}
    params = {"marketplaceIds": "A1VC38T7YXB528"}

    def read():
        return requests.get(url, params={**params, "includedData": "attributes"}, headers=headers,
                            timeout=10).json()["attributes"]["fulfillment_availability"][0]

    assert read()["lead_time_to_ship_max_days"] == 2  # the catalog's handling time for item 1
    replace = {"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
               "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 4}]}]}
    assert requests.patch(url, params=params, headers=headers, json=replace, timeout=10).json()["status"] == "ACCEPTED"
    assert read()["quantity"] == 4 and "lead_time_to_ship_max_days" not in read()
    no_selector = {"productType": "PRODUCT", "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability",
                   "value": [{"quantity": 4}]}]}
    assert requests.patch(url, params=params, headers=headers, json=no_selector, timeout=10).json()["status"] == "INVALID"
