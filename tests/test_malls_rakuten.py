"""The Rakuten RMS Inventory API connector against the sandbox over real HTTP."""
from __future__ import annotations

import threading

import pytest
from redis import Redis

from tatenpo.malls import connector_for
from tatenpo.malls.base import HINT_ITEM, HINT_LOGIN, ItemRef, MallError, PushItem

from .sandbox_helpers import logged_calls


def connector(store, redis_client, **options):
    options = {"retries": 2, "backoff": 0.1, **options}
    return connector_for("rakuten", store["endpoint"], store["credentials"], redis_client, options.pop("timeout", 3), **options)


def push_items(sandbox, store, quantity=lambda n: n + 50):
    return [PushItem(n, i["code"], i["variant"], quantity=quantity(n)) for n, i in enumerate(sandbox.items(store["id"]))]


def test_push_sets_absolute_quantities_and_read_back_sees_them(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=5)
    mall = connector(store, redis_client)
    items = push_items(sandbox, store)
    results = mall.push(items)
    assert all(r.ok for r in results) and {r.key for r in results} == {i.key for i in items}
    stock = sandbox.stock(store["id"])
    assert all(stock[(i.item_code, i.variant_code)] == i.quantity for i in items)
    read = {r.key: r.quantity for r in mall.read(items)}
    assert read == {i.key: i.quantity for i in items}


def test_connection_test_passes_with_the_sandbox_credentials(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    check = connector(store, redis_client).check_login()
    assert check.ok and "楽天RMS" in check.message


def test_wrong_licence_key_fails_the_connection_test_with_the_login_hint(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    wrong = dict(store, credentials=dict(store["credentials"], license_key="SL_wrong"))
    check = connector(wrong, redis_client).check_login()
    assert not check.ok and check.hint == HINT_LOGIN
    assert "licenseKey" in check.message


def test_expired_licence_key_says_so_and_is_not_retried(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    sandbox.faults(store["id"], auth="expired")
    with pytest.raises(MallError) as caught:
        connector(store, redis_client).push([PushItem(1, "tt-0001", "normal-inventory", quantity=3)])
    # RMS says ES01-01 Un-Authorised for an expired key as for a wrong one; the message names the 90-day renewal.
    assert caught.value.code == "ES01-01" and caught.value.hint == HINT_LOGIN and not caught.value.transient
    assert "licenseKey" in caught.value.message and "ES01-01" in caught.value.message
    assert len(sandbox.calls(store["id"])) == 1


def test_an_unknown_item_is_accepted_by_the_push_but_caught_by_read_back(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    mall = connector(store, redis_client)
    item = PushItem(7, "no-such-item", "normal-inventory", quantity=5)
    assert mall.push([item])[0].ok
    read = mall.read([item])[0]
    assert read.quantity is None and read.hint == HINT_ITEM
    assert "no-such-item" in read.message


def test_1001_items_go_in_three_calls_of_at_most_400(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    items = [PushItem(n, f"bulk-{n}", "normal-inventory", quantity=1) for n in range(1001)]
    results = connector(store, redis_client).push(items)
    assert len(results) == 1001 and all(r.ok for r in results)
    upserts = [c for c in sandbox.calls(store["id"]) if c["api"] == "bulk-upsert"]
    assert [c["items"] for c in upserts] == [400, 400, 201]
    assert all(c["status"] == 204 for c in upserts)


def test_a_refused_item_fails_alone_and_the_rest_of_the_batch_is_pushed(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=2)
    mall = connector(store, redis_client)
    items = [PushItem(1, "tt-0001", "normal-inventory", quantity=11),
             PushItem(2, "商品-番号", "normal-inventory", quantity=12),
             PushItem(3, "tt-0003", "normal-inventory", quantity=100000)]
    results = {r.key: r for r in mall.push(items)}
    assert results[1].ok
    assert not results[2].ok and results[2].error_code == "IE0002" and results[2].hint == HINT_ITEM
    assert not results[3].ok and results[3].error_code == "IE0003"
    assert sandbox.stock(store["id"])[("tt-0001", "normal-inventory")] == 11


@pytest.mark.parametrize("fault", ["error_5xx", "throttle", "maintenance", "timeout"])
def test_a_transient_failure_is_retried_and_the_push_succeeds(sandbox, redis_client, fault):
    store = sandbox.create_store("rakuten", items=1)
    sandbox.faults(store["id"], **{fault: 1}, hang_seconds=3)
    results = connector(store, redis_client, timeout=1).push([PushItem(1, "tt-0001", "normal-inventory", quantity=9)])
    assert results[0].ok
    assert sandbox.stock(store["id"])[("tt-0001", "normal-inventory")] == 9
    # The fault was really served, then the retry succeeded; the call that hung (the client gave up after 1 s)
    # is logged when it ends, as 504, after the retry.
    calls = logged_calls(sandbox, store["id"], 2)
    served = {"error_5xx": [500, 204], "throttle": [429, 204], "maintenance": [503, 204], "timeout": [204, 504]}
    assert [c["status"] for c in calls] == served[fault]
    if fault == "throttle":
        # The 429 said Retry-After: 1 (the sandbox's throttle always does): no retry before that.
        assert calls[1]["at"] - calls[0]["at"] >= 1


def test_a_lasting_outage_raises_a_transient_error_after_the_retries(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    sandbox.faults(store["id"], maintenance=True)
    with pytest.raises(MallError) as caught:
        connector(store, redis_client).push([PushItem(1, "tt-0001", "normal-inventory", quantity=9)])
    assert caught.value.transient and caught.value.code == "maintenance"
    assert "メンテナンス" in caught.value.message or "maintenance" in caught.value.message
    assert len(sandbox.calls(store["id"])) == 3  # the first try and two retries


def test_missing_credentials_are_named_before_any_call(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    with pytest.raises(MallError) as caught:
        connector(dict(store, credentials={}), redis_client).push([PushItem(1, "tt-0001", quantity=1)])
    assert caught.value.hint == HINT_LOGIN and caught.value.code == "no-credentials"
    assert sandbox.calls(store["id"]) == []


def test_two_workers_pushing_for_30_seconds_share_the_pace_and_never_hit_429(sandbox, redis_url):
    """Two processes' worth of connectors (each with its own Redis connection) on one licence key."""
    store = sandbox.create_store("rakuten", items=1)
    failures = []

    def worker(offset):
        client = Redis.from_url(redis_url)
        try:
            items = [PushItem(n, f"pace-{offset}-{n}", "normal-inventory", quantity=1) for n in range(15 * 400)]
            results = connector(store, client, retries=0).push(items)
            failures.extend(r for r in results if not r.ok)
        except MallError as exc:
            failures.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = [c for c in sandbox.calls(store["id"]) if c["api"] == "bulk-upsert"]
    assert failures == []
    assert len(calls) == 30 and {c["status"] for c in calls} == {204}
    gaps = [b["at"] - a["at"] for a, b in zip(calls, calls[1:])]
    assert min(gaps) > 0.9  # the sandbox enforces 1 req/s; the pacer keeps under it


def test_read_back_of_1001_items_uses_two_bulk_gets(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    refs = [ItemRef(n, f"read-{n}", "normal-inventory") for n in range(1001)]
    results = connector(store, redis_client).read(refs)
    assert len(results) == 1001 and all(r.quantity is None for r in results)
    assert [c["items"] for c in sandbox.calls(store["id"]) if c["api"] == "bulk-get"] == [1000, 1]


def test_an_item_deleted_on_the_mall_reads_back_as_missing_with_the_item_hint(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=2)
    assert sandbox.delete_items(store["id"], [{"code": "tt-0001", "variant": "normal-inventory"}]) == 1
    mall = connector(store, redis_client)
    read = {r.key: r for r in mall.read([ItemRef(1, "tt-0001", "normal-inventory"), ItemRef(2, "tt-0002", "s")])}
    assert read[1].quantity is None and read[1].hint == HINT_ITEM
    assert read[2].quantity is not None


def test_reflection_delay_keeps_the_old_quantity_visible_until_it_passes(sandbox, redis_client):
    import time

    store = sandbox.create_store("rakuten", items=1)
    before = sandbox.stock(store["id"])[("tt-0001", "normal-inventory")]
    sandbox.faults(store["id"], reflection_delay=1)
    mall = connector(store, redis_client)
    item = PushItem(1, "tt-0001", "normal-inventory", quantity=before + 3)
    assert mall.push([item])[0].ok
    assert mall.read([item])[0].quantity == before
    time.sleep(1.2)
    assert mall.read([item])[0].quantity == before + 3


def test_rms_refuses_a_wrong_key_with_es01_01_un_authorised(sandbox):
    import base64

    import requests

    store = sandbox.create_store("rakuten", items=1)
    token = base64.b64encode(f"{store['credentials']['service_secret']}:SL_wrong".encode()).decode()
    response = requests.post(store["endpoint"] + "/es/2.0/inventories/bulk-get", json={"inventories": []},
                             headers={"Authorization": f"ESA {token}"}, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"Results": {"errorCode": "ES01-01", "message": "Un-Authorised"}}


def test_a_wrong_key_is_named_with_rms_code_and_the_login_hint(sandbox, redis_client):
    store = sandbox.create_store("rakuten", items=1)
    wrong = dict(store, credentials=dict(store["credentials"], license_key="SL_wrong"))
    with pytest.raises(MallError) as caught:
        connector(wrong, redis_client).push([PushItem(1, "tt-0001", "normal-inventory", quantity=3)])
    assert caught.value.code == "ES01-01" and caught.value.hint == HINT_LOGIN and not caught.value.transient


def test_the_body_goes_as_exactly_application_json(sandbox, redis_client):
    import base64

    import requests

    store = sandbox.create_store("rakuten", items=1)
    token = base64.b64encode(
        f"{store['credentials']['service_secret']}:{store['credentials']['license_key']}".encode()).decode()
    labelled = requests.post(store["endpoint"] + "/es/2.0/inventories/bulk-get", timeout=10,
                             data=b'{"inventories": [{"manageNumber": "tt-0001", "variantId": "normal-inventory"}]}',
                             headers={"Authorization": f"ESA {token}",
                                      "Content-Type": "application/json; charset=utf-8"})
    assert labelled.status_code == 415
    mall = connector(store, redis_client)
    assert mall.http.session.headers["Content-Type"] == "application/json"
    assert mall.push([PushItem(1, "tt-0001", "normal-inventory", quantity=4)])[0].ok
    assert mall.read([ItemRef(1, "tt-0001", "normal-inventory")])[0].quantity == 4
