"""The Shopify GraphQL connector (inventorySetQuantities, inventory levels) against the sandbox over real HTTP."""
from __future__ import annotations

import pytest

from tatenpo.malls import connector_for
from tatenpo.malls.base import HINT_ITEM, HINT_LOGIN, ItemRef, MallError, PushItem

from .sandbox_helpers import logged_calls


def connector(store, redis_client, **options):
    options = {"retries": 2, "backoff": 0.1, **options}
    return connector_for("shopify", store["endpoint"], store["credentials"], redis_client, options.pop("timeout", 3), **options)


def test_push_by_inventory_item_and_read_back(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=3)
    mall = connector(store, redis_client)
    items = [PushItem(n, i["code"], i["variant"], quantity=20 + n) for n, i in enumerate(sandbox.items(store["id"]))]
    assert all(r.ok for r in mall.push(items))
    assert sandbox.stock(store["id"]) == {(i.item_code, i.variant_code): i.quantity for i in items}
    assert {r.key: r.quantity for r in mall.read(items)} == {i.key: i.quantity for i in items}


def test_a_listing_known_only_by_its_variant_sku_is_found_and_pushed(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=2)
    mall = connector(store, redis_client)
    result = mall.push([PushItem(1, "TT-0002-M", "", quantity=42)])
    assert result[0].ok
    by_sku = {i["sku"]: i["quantity"] for i in sandbox.items(store["id"])}
    assert by_sku["TT-0002-M"] == 42
    assert mall.read([ItemRef(1, "TT-0002-M")])[0].quantity == 42


def test_an_unknown_sku_fails_with_the_item_hint(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=1)
    result = connector(store, redis_client).push([PushItem(1, "NO-SUCH-SKU", "", quantity=1)])[0]
    assert not result.ok and result.hint == HINT_ITEM and "NO-SUCH-SKU" in result.message


def test_stale_change_from_quantity_fails_that_item_and_the_others_are_set(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=2)
    first, second = sandbox.items(store["id"])[:2]
    results = {r.key: r for r in connector(store, redis_client).push([
        PushItem(1, first["code"], first["variant"], quantity=5, expected=first["quantity"] + 1),
        PushItem(2, second["code"], second["variant"], quantity=6, expected=second["quantity"]),
    ])}
    assert not results[1].ok and results[1].error_code == "CHANGE_FROM_QUANTITY_STALE" and not results[1].transient
    assert results[2].ok
    stock = sandbox.stock(store["id"])
    assert stock[(first["code"], first["variant"])] == first["quantity"]
    assert stock[(second["code"], second["variant"])] == 6


def test_an_unknown_inventory_item_fails_alone(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=1)
    item = sandbox.items(store["id"])[0]
    results = {r.key: r for r in connector(store, redis_client).push([
        PushItem(1, "gid://shopify/InventoryItem/1", item["variant"], quantity=5),
        PushItem(2, item["code"], item["variant"], quantity=9)])}
    assert not results[1].ok and results[1].error_code == "INVALID_INVENTORY_ITEM" and results[1].hint == HINT_ITEM
    assert results[2].ok and sandbox.stock(store["id"])[(item["code"], item["variant"])] == 9


def test_251_quantities_go_in_two_calls_and_the_cost_bucket_is_never_overdrawn(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=60)  # 75 inventory items
    items = sandbox.items(store["id"])
    pushes = [PushItem(n, items[n % len(items)]["code"], items[0]["variant"], quantity=n % 50) for n in range(251)]
    mall = connector(store, redis_client)
    for _round in range(5):  # 5 × 2 calls × ~260 points: more than the 1000-point bucket holds
        assert all(r.ok for r in mall.push(pushes))
    calls = sandbox.calls(store["id"])
    sets = [c["items"] for c in calls if c["api"] == "inventorySetQuantities"]
    assert sets == [250, 1] * 5
    assert not [c for c in calls if c["api"] == "THROTTLED"]


def test_throttled_answer_is_retried(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=1)
    item = sandbox.items(store["id"])[0]
    sandbox.faults(store["id"], throttle=1)
    # A backoff far shorter than the wait the THROTTLED answer asks for, so that only the answer can set it.
    mall = connector(store, redis_client, backoff=0.01)
    assert mall.push([PushItem(1, item["code"], item["variant"], quantity=3)])[0].ok
    assert sandbox.stock(store["id"])[(item["code"], item["variant"])] == 3
    # Shopify says THROTTLED in a 200 answer (logged as "graphql"); then the mutation went through.
    calls = logged_calls(sandbox, store["id"], 2)
    assert [(c["api"], c["status"]) for c in calls] == [("graphql", 200), ("inventorySetQuantities", 200)]
    # The answer said 0 of the mutation's 10 points were available, restored at 100 a second: no retry
    # before the 0.1 s that takes.
    assert calls[1]["at"] - calls[0]["at"] >= 0.1


@pytest.mark.parametrize("fault", ["error_5xx", "maintenance", "timeout"])
def test_a_transient_failure_is_retried(sandbox, redis_client, fault):
    store = sandbox.create_store("shopify", items=1)
    item = sandbox.items(store["id"])[0]
    sandbox.faults(store["id"], **{fault: 1}, hang_seconds=3)
    assert connector(store, redis_client, timeout=1).push([PushItem(1, item["code"], item["variant"], quantity=4)])[0].ok
    assert sandbox.stock(store["id"])[(item["code"], item["variant"])] == 4
    # The fault was really served, then the retry succeeded; the call that hung (the client gave up after 1 s)
    # is logged when it ends, as 504, after the retry.
    calls = [c["status"] for c in logged_calls(sandbox, store["id"], 2)]
    assert calls == {"error_5xx": [500, 200], "maintenance": [503, 200], "timeout": [200, 504]}[fault]


def test_wrong_token_fails_the_connection_test_with_the_login_hint(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=1)
    wrong = dict(store, credentials=dict(store["credentials"], access_token="shpat_wrong"))
    check = connector(wrong, redis_client).check_login()
    assert not check.ok and check.hint == HINT_LOGIN
    assert connector(store, redis_client).check_login().ok


def test_revoked_token_stops_a_push_without_retrying(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=1)
    item = sandbox.items(store["id"])[0]
    sandbox.faults(store["id"], auth="wrong")
    with pytest.raises(MallError) as caught:
        connector(store, redis_client).push([PushItem(1, item["code"], item["variant"], quantity=3)])
    assert not caught.value.transient and caught.value.hint == HINT_LOGIN
    assert len(sandbox.calls(store["id"])) == 1


def test_reflection_delay_shows_the_old_level_until_it_passes_but_the_compare_uses_the_new_one(sandbox, redis_client):
    import time

    store = sandbox.create_store("shopify", items=1)
    item = sandbox.items(store["id"])[0]
    sandbox.faults(store["id"], reflection_delay=1)
    mall = connector(store, redis_client)
    assert mall.push([PushItem(1, item["code"], item["variant"], quantity=item["quantity"] + 2)])[0].ok
    assert mall.read([ItemRef(1, item["code"], item["variant"])])[0].quantity == item["quantity"]
    stale = mall.push([PushItem(1, item["code"], item["variant"], quantity=9, expected=item["quantity"])])[0]
    assert stale.error_code == "CHANGE_FROM_QUANTITY_STALE"  # Shopify holds the new quantity already
    time.sleep(1.2)
    assert mall.read([ItemRef(1, item["code"], item["variant"])])[0].quantity == item["quantity"] + 2


def _set_quantities(store, item, quantity, key=None, version="2026-04"):
    import requests

    directive = " @idempotent(key: $key)" if key else ""
    query = ("mutation Set($input: InventorySetQuantitiesInput!, $key: String!) { inventorySetQuantities(input: $input)"
             + directive + " { userErrors { code } } }")
    variables = {"key": key, "input": {"name": "available", "reason": "correction", "quantities": [
        {"inventoryItemId": item["code"], "locationId": item["variant"], "quantity": quantity,
         "changeFromQuantity": None}]}}
    return requests.post(f"{store['endpoint']}/admin/api/{version}/graphql.json", timeout=10,
                         headers={"X-Shopify-Access-Token": store["credentials"]["access_token"]},
                         json={"query": query, "variables": variables}).json()


def test_from_2026_04_the_mutation_needs_an_idempotency_key_and_a_repeated_key_applies_once(sandbox):
    store = sandbox.create_store("shopify", items=1)
    item = sandbox.items(store["id"])[0]
    refused = _set_quantities(store, item, 7)
    assert refused["errors"] and sandbox.stock(store["id"])[(item["code"], item["variant"])] != 7
    assert not _set_quantities(store, item, 7, key="k-1")["data"]["inventorySetQuantities"]["userErrors"]
    assert sandbox.stock(store["id"])[(item["code"], item["variant"])] == 7
    sandbox.set_stock(store["id"], [{"code": item["code"], "variant": item["variant"], "quantity": 2}])  # a sale
    replay = _set_quantities(store, item, 9, key="k-1")  # a retry of the first request: answered again, not applied
    assert not replay["data"]["inventorySetQuantities"]["userErrors"]
    assert sandbox.stock(store["id"])[(item["code"], item["variant"])] == 2


def test_the_connector_sends_an_idempotency_key(sandbox, redis_client):
    store = sandbox.create_store("shopify", items=1)
    item = sandbox.items(store["id"])[0]
    assert connector(store, redis_client).push([PushItem(1, item["code"], item["variant"], quantity=6)])[0].ok
    assert sandbox.stock(store["id"])[(item["code"], item["variant"])] == 6
