"""The Yahoo!ショッピング connector (setStock / getStock) against the sandbox over real HTTP."""
from __future__ import annotations

import time

import pytest

from tatenpo.malls import connector_for
from tatenpo.malls.base import HINT_ITEM, HINT_LOGIN, ItemRef, MallError, PushItem

from .sandbox_helpers import logged_calls


def connector(store, redis_client, **options):
    options = {"retries": 2, "backoff": 0.1, **options}
    return connector_for("yahoo", store["endpoint"], store["credentials"], redis_client, options.pop("timeout", 3), **options)


def test_push_sets_codes_and_subcodes_and_read_back_sees_them(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=3)
    mall = connector(store, redis_client)
    items = [PushItem(n, i["code"], i["variant"], quantity=n * 3) for n, i in enumerate(sandbox.items(store["id"]))]
    assert any(i.variant_code for i in items)
    assert all(r.ok for r in mall.push(items))
    assert sandbox.stock(store["id"]) == {(i.item_code, i.variant_code): i.quantity for i in items}
    assert {r.key: r.quantity for r in mall.read(items)} == {i.key: i.quantity for i in items}


def test_1001_items_go_in_two_calls(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    items = [PushItem(n, f"bulk-{n}", "", quantity=2) for n in range(1001)]
    assert all(r.ok for r in connector(store, redis_client).push(items))
    assert [c["items"] for c in sandbox.calls(store["id"]) if c["api"] == "setStock"] == [1000, 1]


def test_unknown_code_is_accepted_but_read_back_says_the_item_is_missing(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    mall = connector(store, redis_client)
    item = PushItem(5, "not-on-yahoo", "", quantity=4)
    assert mall.push([item])[0].ok
    read = mall.read([item])[0]
    assert read.quantity is None and read.hint == HINT_ITEM and "not-on-yahoo" in read.message


def test_an_invalid_code_or_quantity_fails_that_item_only(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    results = {r.key: r for r in connector(store, redis_client).push([
        PushItem(1, "tt-0001", "", quantity=8), PushItem(2, "商品,1", "", quantity=1),
        PushItem(3, "tt-0001", "", quantity=-1)])}
    assert results[1].ok
    assert not results[2].ok and results[2].hint == HINT_ITEM
    assert not results[3].ok and results[3].error_code == "st-02104"
    assert sandbox.stock(store["id"])[("tt-0001", "")] == 8


def test_a_negative_quantity_is_never_sent_because_yahoo_would_subtract(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    before = sandbox.stock(store["id"])[("tt-0001", "")]
    connector(store, redis_client).push([PushItem(1, "tt-0001", "", quantity=-3)])
    assert sandbox.stock(store["id"])[("tt-0001", "")] == before


def test_expired_token_without_a_refresh_token_fails_the_connection_test_with_the_login_hint(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    sandbox.faults(store["id"], auth="expired")
    only_token = dict(store, credentials={k: store["credentials"][k] for k in ("seller_id", "access_token")})
    check = connector(only_token, redis_client).check_login()
    assert not check.ok and check.hint == HINT_LOGIN and "expired" in check.message


def test_an_expired_token_is_renewed_with_the_refresh_token_and_shared_by_every_worker(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    sandbox.faults(store["id"], auth="expired")
    assert connector(store, redis_client).push([PushItem(1, "tt-0001", "", quantity=17)])[0].ok
    assert sandbox.stock(store["id"])[("tt-0001", "")] == 17
    # Another worker process starts with the cached token: no second renewal, no failed call.
    assert connector(store, redis_client).read([ItemRef(1, "tt-0001")])[0].quantity == 17
    calls = sandbox.calls(store["id"])
    assert [c["api"] for c in calls if c["api"] == "token"] == ["token"]
    assert [c["status"] for c in calls if c["api"] == "getStock"] == [200]


def test_a_revoked_refresh_token_asks_to_authorize_again(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    sandbox.faults(store["id"], auth="revoked")
    check = connector(store, redis_client).check_login()
    assert not check.ok and check.hint == HINT_LOGIN and "invalid_grant" in check.message


def test_wrong_token_is_a_permanent_login_error(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    wrong = dict(store, credentials=dict(store["credentials"], access_token="nope"))
    with pytest.raises(MallError) as caught:
        connector(wrong, redis_client).push([PushItem(1, "tt-0001", "", quantity=1)])
    assert caught.value.hint == HINT_LOGIN and not caught.value.transient


def test_wrong_seller_id_is_named(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    wrong = dict(store, credentials=dict(store["credentials"], seller_id="snbx-other"))
    check = connector(wrong, redis_client).check_login()
    assert not check.ok and "snbx-other" in check.message


@pytest.mark.parametrize("fault", ["error_5xx", "throttle", "maintenance", "timeout"])
def test_a_transient_failure_is_retried(sandbox, redis_client, fault):
    store = sandbox.create_store("yahoo", items=1)
    sandbox.faults(store["id"], **{fault: 1}, hang_seconds=3)
    assert connector(store, redis_client, timeout=1).push([PushItem(1, "tt-0001", "", quantity=6)])[0].ok
    assert sandbox.stock(store["id"])[("tt-0001", "")] == 6
    # The fault was really served (over its quota Yahoo answers 403, not 429), then the retry succeeded; the
    # call that hung (the client gave up after 1 s) is logged when it ends, as 504, after the retry.
    calls = logged_calls(sandbox, store["id"], 2)
    served = {"error_5xx": [500, 200], "throttle": [403, 200], "maintenance": [503, 200], "timeout": [200, 504]}
    assert [c["status"] for c in calls] == served[fault]
    if fault == "throttle":
        # The 403 said Retry-After: 1 (the sandbox's throttle always does): no retry before that.
        assert calls[1]["at"] - calls[0]["at"] >= 1


def test_a_timeout_that_lasts_raises_a_transient_error(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    sandbox.faults(store["id"], timeout=True, hang_seconds=2)
    with pytest.raises(MallError) as caught:
        connector(store, redis_client, timeout=0.5, retries=1).read([ItemRef(1, "tt-0001")])
    assert caught.value.transient and caught.value.code == "timeout"


def test_reflection_delay_shows_the_new_quantity_only_after_the_delay(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    before = sandbox.stock(store["id"])[("tt-0001", "")]
    sandbox.faults(store["id"], reflection_delay=2)
    mall = connector(store, redis_client)
    item = PushItem(1, "tt-0001", "", quantity=before + 10)
    assert mall.push([item])[0].ok
    assert mall.read([item])[0].quantity == before  # 未反映 for now
    time.sleep(2.2)
    assert mall.read([item])[0].quantity == before + 10
    assert sandbox.stock(store["id"])[("tt-0001", "")] == before + 10


def test_pushes_to_one_url_are_a_second_apart(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    mall = connector(store, redis_client, retries=0)
    for n in range(4):
        mall.push([PushItem(1, "tt-0001", "", quantity=n)])
    calls = [c for c in sandbox.calls(store["id"]) if c["api"] == "setStock"]
    assert [c["status"] for c in calls] == [200] * 4


def test_a_push_still_works_and_stays_paced_when_redis_is_down(sandbox):
    from redis import Redis

    store = sandbox.create_store("yahoo", items=1)
    gone = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    mall = connector(store, gone, retries=0)
    for n in range(3):
        assert mall.push([PushItem(1, "tt-0001", "", quantity=n)])[0].ok
    assert [c["status"] for c in sandbox.calls(store["id"]) if c["api"] == "setStock"] == [200, 200, 200]


def test_a_partly_refused_batch_keeps_the_items_yahoo_set(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=3)
    sandbox.faults(store["id"], item_error=["tt-0003"])
    items = [PushItem(1, "tt-0001", "", quantity=11), PushItem(3, "tt-0003", "", quantity=13)]
    results = {r.key: r for r in connector(store, redis_client).push(items)}
    assert results[1].ok and sandbox.stock(store["id"])[("tt-0001", "")] == 11
    assert not results[3].ok and results[3].error_code == "st-02104" and not results[3].transient
    assert [c["status"] for c in sandbox.calls(store["id"]) if c["api"] == "setStock"] == [207]  # sent once


def test_over_the_quota_yahoo_answers_403_forbidden_and_the_push_waits_instead_of_blaming_the_login(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    sandbox.faults(store["id"], throttle=True)
    with pytest.raises(MallError) as caught:
        connector(store, redis_client, retries=1).push([PushItem(1, "tt-0001", "", quantity=2)])
    assert caught.value.transient and caught.value.code == "quota" and caught.value.hint != HINT_LOGIN
    refused = [c for c in sandbox.calls(store["id"]) if c["api"] == "setStock"]
    assert [c["status"] for c in refused] == [403, 403]  # retried once, as a wait


def test_two_listings_of_one_code_are_sent_once_and_share_the_result(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    results = connector(store, redis_client).push([PushItem(1, "tt-0001", "", quantity=5),
                                                   PushItem(2, "tt-0001", "", quantity=5)])
    assert sorted(r.key for r in results if r.ok) == [1, 2]
    assert [c["items"] for c in sandbox.calls(store["id"]) if c["api"] == "setStock"] == [1]
    assert sandbox.stock(store["id"])[("tt-0001", "")] == 5


def test_yahoo_refuses_a_code_sent_twice_with_st_02103(sandbox):
    import requests

    store = sandbox.create_store("yahoo", items=1)
    response = requests.post(
        sandbox.url + "/yahoo/ShoppingWebService/V1/setStock",
        headers={"Authorization": "Bearer " + store["credentials"]["access_token"]},
        data={"seller_id": store["credentials"]["seller_id"], "item_code": "tt-0001,tt-0001", "quantity": "1,2"},
        timeout=10)
    assert response.status_code == 207 and response.text.count("<ErrorCode>st-02103</ErrorCode>") == 2


def test_codes_take_letters_digits_and_hyphens_and_quantities_up_to_999999999(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    results = {r.key: r for r in connector(store, redis_client).push([
        PushItem(1, "tt-0001", "", quantity=999_999_999), PushItem(2, "tt_0001", "", quantity=1)])}
    assert results[1].ok and sandbox.stock(store["id"])[("tt-0001", "")] == 999_999_999
    assert not results[2].ok and results[2].error_code == "st-02101"  # "_" is not a Yahoo! code character


def test_a_store_with_the_refresh_trio_but_no_access_token_fetches_one(sandbox, redis_client):
    store = sandbox.create_store("yahoo", items=1)
    trio = dict(store, credentials={k: v for k, v in store["credentials"].items() if k != "access_token"})
    assert connector(trio, redis_client).check_login().ok
    assert [(c["api"], c["status"]) for c in sandbox.calls(store["id"])] == [("token", 200), ("getStock", 200)]
