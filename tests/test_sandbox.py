"""The sandbox malls as a user and a test see them: the admin API, the store page, listing files in each mall's
real encoding, fault switches, and stock that survives a restart."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tatenpo.malls import CONNECTORS

ROOT = Path(__file__).resolve().parent.parent


def test_a_new_sandbox_store_issues_exactly_the_credentials_tatenpo_asks_for(sandbox):
    for connector in CONNECTORS:
        mall = connector.key
        store = sandbox.create_store(mall, items=3)
        assert store["mall"] == mall
        assert set(store["credentials"]) == {f.key for f in connector.credential_fields}
        assert all(store["credentials"].values())
        if mall == "rakuten-ftp":
            assert store["endpoint"] == f"ftp://127.0.0.1:{sandbox.ftp_port}"
            assert store["port"] == sandbox.ftp_port
        else:
            assert store["endpoint"].startswith(sandbox.url + "/")


def test_generated_items_have_japanese_names_and_some_variations(sandbox):
    store = sandbox.create_store("rakuten", items=8)
    items = sandbox.items(store["id"])
    assert {i["variant"] for i in items} >= {"normal-inventory", "s", "m", "l"}
    assert any("有田焼" in i["name"] for i in items)
    assert len({i["code"] for i in items}) == 8


def test_admin_api_refuses_an_unknown_mall_with_a_clear_message(sandbox):
    response = requests.post(sandbox.url + "/_sandbox/stores", json={"mall": "rakuma", "items": 3}, timeout=10)
    assert response.status_code == 400
    assert "mall must be one of" in response.json()["error"]
    response = requests.post(sandbox.url + "/_sandbox/stores", json={"mall": "yahoo", "items": -1}, timeout=10)
    assert response.status_code == 400


def test_unknown_fault_switch_is_refused_and_changes_nothing(sandbox):
    store = sandbox.create_store("yahoo", items=1)
    response = requests.post(f"{sandbox.url}/_sandbox/stores/{store['id']}/faults", json={"explode": True}, timeout=10)
    assert response.status_code == 400
    assert "explode" in response.json()["error"]
    assert requests.get(f"{sandbox.url}/_sandbox/stores/{store['id']}", timeout=10).json()["faults"] == {}


def test_store_page_shows_the_current_stock_and_download_links(sandbox):
    store = sandbox.create_store("rakuten", items=2)
    sandbox.set_stock(store["id"], [{"code": "tt-0001", "variant": "normal-inventory", "quantity": 4321}])
    page = requests.get(store["page"], timeout=10).text
    assert "有田焼 マグカップ" in page
    assert ">4321" in page
    assert "normal-item.csv" in page


def test_index_page_lists_stores_with_their_credentials(sandbox):
    store = sandbox.create_store("amazon", items=1)
    page = requests.get(sandbox.url + "/", timeout=10).text
    assert store["credentials"]["seller_id"] in page


def test_rakuten_listing_csv_is_cp932_with_product_and_sku_rows(sandbox):
    store = sandbox.create_store("rakuten", items=2)
    data = sandbox.listing_csv(store["id"])
    assert b"\r\n" in data and not data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("cp932"))))
    assert rows[0]["商品管理番号（商品URL）"] == "tt-0001" and rows[0]["商品名"] == "有田焼 マグカップ"
    skus = [r for r in rows if r["SKU管理番号"]]
    assert [r["SKU管理番号"] for r in skus] == ["normal-inventory", "s", "m", "l"]
    stock = sandbox.stock(store["id"])
    assert int(skus[1]["在庫数"]) == stock[("tt-0002", "s")]
    assert skus[1]["システム連携用SKU番号"] == "TT-0002-S"


def test_yahoo_offers_quantity_csv_and_data_csv_in_cp932(sandbox):
    store = sandbox.create_store("yahoo", items=2)
    quantity = list(csv.reader(io.StringIO(sandbox.listing_csv(store["id"], "quantity").decode("cp932"))))
    assert quantity[0] == ["code", "name", "sub-code", "quantity", "allow-overdraft", "stock-close"]
    assert ["tt-0002", "tt-0002-s"] == quantity[2][::2][:2]
    data = list(csv.DictReader(io.StringIO(sandbox.listing_csv(store["id"], "data").decode("cp932"))))
    assert data[1]["sub-code"].startswith("サイズ:S=tt-0002-s")


def test_amazon_report_is_tab_separated_cp932_with_japanese_headers(sandbox):
    store = sandbox.create_store("amazon", items=1)
    lines = sandbox.listing_csv(store["id"]).decode("cp932").splitlines()
    headers = lines[0].split("\t")
    assert "出品者SKU" in headers and "数量" in headers
    assert lines[1].split("\t")[headers.index("出品者SKU")] == "TT-0001"


def test_shopify_products_csv_is_utf8_grouped_by_handle(sandbox):
    store = sandbox.create_store("shopify", items=2)
    rows = list(csv.DictReader(io.StringIO(sandbox.listing_csv(store["id"]).decode("utf-8"))))
    assert [r["Handle"] for r in rows] == ["tt-0001", "tt-0002", "tt-0002", "tt-0002"]
    assert rows[1]["Title"] and not rows[2]["Title"]
    assert rows[2]["Variant SKU"] == "TT-0002-M"


def test_unknown_listing_file_kind_says_which_exist(sandbox):
    store = sandbox.create_store("yahoo", items=1)
    response = requests.get(f"{sandbox.url}/_sandbox/stores/{store['id']}/listing.csv?file=orders", timeout=10)
    assert response.status_code == 400
    assert "quantity" in response.json()["error"]


def test_yahoo_reports_a_bad_quantity_per_item_and_sets_the_others(sandbox):
    store = sandbox.create_store("yahoo", items=2)
    response = requests.post(
        sandbox.url + "/yahoo/ShoppingWebService/V1/setStock",
        headers={"Authorization": "Bearer " + store["credentials"]["access_token"]},
        data={"seller_id": store["credentials"]["seller_id"], "item_code": "tt-0001,tt-0002:tt-0002-s",
              "quantity": "abc,7"}, timeout=10)
    assert response.status_code == 207  # Multi-Status: some items failed, the others were set
    assert "<ErrorCode>st-02104</ErrorCode>" in response.text
    assert sandbox.stock(store["id"])[("tt-0002", "tt-0002-s")] == 7


def test_yahoo_expired_token_gets_401_with_www_authenticate(sandbox):
    store = sandbox.create_store("yahoo", items=1)
    sandbox.faults(store["id"], auth="expired")
    response = requests.post(
        sandbox.url + "/yahoo/ShoppingWebService/V1/getStock",
        headers={"Authorization": "Bearer " + store["credentials"]["access_token"]},
        data={"seller_id": store["credentials"]["seller_id"], "item_code": "tt-0001"}, timeout=10)
    assert response.status_code == 401
    assert 'error_description="expired token"' in response.headers["WWW-Authenticate"]


def test_rakuten_refuses_a_whole_bulk_upsert_with_real_error_json_and_limits_to_1_per_second(sandbox):
    import base64

    store = sandbox.create_store("rakuten", items=1)
    before = sandbox.stock(store["id"])[("tt-0001", "normal-inventory")]
    creds = store["credentials"]
    token = base64.b64encode(f"{creds['service_secret']}:{creds['license_key']}".encode()).decode()
    response = requests.post(
        store["endpoint"] + "/es/2.0/inventories/bulk-upsert", headers={"Authorization": "ESA " + token},
        json={"inventories": [
            {"manageNumber": "tt-0001", "variantId": "normal-inventory", "mode": "ABSOLUTE", "quantity": 5},
            {"manageNumber": "x" * 33, "variantId": "normal-inventory", "mode": "ABSOLUTE", "quantity": 5},
            {"manageNumber": "tt-0001", "variantId": "normal-inventory", "mode": "ABSOLUTE", "quantity": 100000},
        ]}, timeout=10)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(e["code"], e["metadata"]["propertyPath"]) for e in errors} == {
        ("IE0004", "inventories[1].manageNumber"), ("IE0003", "inventories[2].quantity")}
    assert sandbox.stock(store["id"])[("tt-0001", "normal-inventory")] == before  # the valid entry waits too
    response = requests.post(store["endpoint"] + "/es/2.0/inventories/bulk-upsert",
                             headers={"Authorization": "ESA " + token},
                             json={"inventories": [{"manageNumber": "tt-0001", "variantId": "normal-inventory",
                                                    "mode": "ABSOLUTE", "quantity": 401}] * 401}, timeout=10)
    assert response.status_code == 429  # a second upsert within the same second: the real limit is 1 req/s
    time.sleep(1.1)
    response = requests.post(store["endpoint"] + "/es/2.0/inventories/bulk-upsert",
                             headers={"Authorization": "ESA " + token},
                             json={"inventories": [{"manageNumber": "tt-0001", "variantId": "normal-inventory",
                                                    "mode": "ABSOLUTE", "quantity": 401}] * 401}, timeout=10)
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "IE0003"


def test_stock_survives_a_restart_of_the_sandbox(tmp_path):
    ports = tmp_path / "ports.json"
    env = dict(os.environ, SANDBOX_DB=str(tmp_path / "s.db"), SANDBOX_HTTP_PORT="0", SANDBOX_FTP_PORT="0",
               SANDBOX_PORTS_FILE=str(ports))

    def start():
        ports.unlink(missing_ok=True)
        process = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not ports.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return process, json.loads(ports.read_text())["url"]

    process, url = start()
    try:
        store = requests.post(url + "/_sandbox/stores", json={"mall": "amazon", "items": 1}, timeout=10).json()
        requests.post(f"{url}/_sandbox/stores/{store['id']}/stock",
                      json={"items": [{"code": "TT-0001", "variant": "", "quantity": 77}]}, timeout=10)
    finally:
        process.terminate()
        process.wait(10)
    process, url = start()
    try:
        items = requests.get(f"{url}/_sandbox/stores/{store['id']}/stock", timeout=10).json()["items"]
        assert items[0]["quantity"] == 77
    finally:
        process.terminate()
        process.wait(10)


def _esa(store):
    import base64

    creds = store["credentials"]
    return {"Authorization": "ESA " + base64.b64encode(
        f"{creds['service_secret']}:{creds['license_key']}".encode()).decode()}


def test_rakuten_single_inventory_get_put_delete_and_range(sandbox):
    store = sandbox.create_store("rakuten", items=1)
    single = store["endpoint"] + "/es/2.0/inventories/manage-numbers/tt-0001/variants/normal-inventory"
    response = requests.put(single, headers=_esa(store), json={"mode": "ABSOLUTE", "quantity": 321}, timeout=10)
    assert response.status_code == 204
    time.sleep(1.05)  # single calls: 1 request/s
    body = requests.get(single, headers=_esa(store), timeout=10).json()
    assert body["quantity"] == 321 and body["updated"].endswith("+09:00")
    ranged = requests.get(store["endpoint"] + "/es/2.0/inventories/bulk-get/range",
                          params={"minQuantity": 300, "maxQuantity": 400}, headers=_esa(store), timeout=10).json()
    assert [i["manageNumber"] for i in ranged["inventories"]] == ["tt-0001"]
    time.sleep(1.05)
    assert requests.delete(single, headers=_esa(store), timeout=10).status_code == 204
    time.sleep(1.05)
    missing = requests.get(single, headers=_esa(store), timeout=10)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "GE0014"


def test_a_hung_call_changes_nothing_even_after_its_client_gave_up(sandbox):
    store = sandbox.create_store("amazon", items=1)
    before = sandbox.stock(store["id"])[("TT-0001", "")]
    sandbox.faults(store["id"], timeout=1, hang_seconds=1)
    url = f"{store['endpoint']}/listings/2021-08-01/items/{store['credentials']['seller_id']}/TT-0001"
    body = {"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                                                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": before + 5}]}]}
    try:
        requests.patch(url, params={"marketplaceIds": "A1VC38T7YXB528"}, json=body, timeout=0.3,
                       headers={"x-amz-access-token": store["credentials"]["access_token"]})
        raise AssertionError("the call should have hung")
    except requests.Timeout:
        pass
    time.sleep(1.3)
    assert sandbox.stock(store["id"])[("TT-0001", "")] == before
    assert [c["status"] for c in sandbox.calls(store["id"])] == [504]


def test_a_slow_call_whose_client_waits_is_served(sandbox):
    store = sandbox.create_store("amazon", items=1)
    sandbox.faults(store["id"], timeout=1, hang_seconds=1)
    url = f"{store['endpoint']}/listings/2021-08-01/items/{store['credentials']['seller_id']}/TT-0001"
    body = {"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                                                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 61}]}]}
    response = requests.patch(url, params={"marketplaceIds": "A1VC38T7YXB528"}, json=body, timeout=5,
                              headers={"x-amz-access-token": store["credentials"]["access_token"]})
    assert response.json()["status"] == "ACCEPTED"
    assert sandbox.stock(store["id"])[("TT-0001", "")] == 61


def test_the_store_page_finds_an_item_of_a_big_catalog_by_code(sandbox):
    store = sandbox.create_store("amazon", items=700)  # more SKUs than one page shows
    page = requests.get(store["page"], timeout=10).text
    assert "先頭の500件を表示しています" in page and "TT-0700" not in page
    found = requests.get(store["page"], params={"q": "tt-0700"}, timeout=10).text
    assert "TT-0700" in found and "先頭の" not in found


def test_a_slow_form_call_keeps_its_form(sandbox):
    store = sandbox.create_store("yahoo", items=1)
    sandbox.faults(store["id"], timeout=1, hang_seconds=1)
    response = requests.post(
        sandbox.url + "/yahoo/ShoppingWebService/V1/setStock",
        headers={"Authorization": "Bearer " + store["credentials"]["access_token"]},
        data={"seller_id": store["credentials"]["seller_id"], "item_code": "tt-0001", "quantity": "8"}, timeout=5)
    assert response.status_code == 200 and "<Quantity>8</Quantity>" in response.text
    assert sandbox.stock(store["id"])[("tt-0001", "")] == 8
