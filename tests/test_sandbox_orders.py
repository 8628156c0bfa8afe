"""Purchases on the sandbox malls: the mall's stock falls at once, the order is kept, and the order mail goes in
the mall's own format over real SMTP to the address the shop registered, retried like a real MTA."""
from __future__ import annotations

import csv
import io
import re
import sqlite3
import uuid
from email import message_from_bytes, policy
from urllib.parse import quote

import pytest
import requests

from sandbox.state import State

from .sandbox_helpers import MailSink, free_port, start_sandbox, stop_sandbox, wait_for

MALLS = ["rakuten", "yahoo", "amazon", "shopify"]
# What each mall's order mail looks like: its charset, how it prints a quantity of 3 (楽天 価格 … x 3(個),
# Yahoo! …×3＝…, Amazon 数量：3, Shopify 3x title) and the shape of its order numbers.
CHARSET = {"rakuten": "iso-2022-jp", "yahoo": "iso-2022-jp", "amazon": "utf-8", "shopify": "utf-8"}
QUANTITY_3 = {"rakuten": "x 3(個)", "yahoo": "×3＝", "amazon": "数量：3", "shopify": "3x "}
ORDER_NUMBER = {"rakuten": r"\d{6}-\d{8}-\d{10}", "yahoo": r"snbx-\d+-\d{8}", "amazon": r"\d{3}-\d{7}-\d{7}",
                "shopify": r"#\d{4,}"}


@pytest.fixture(scope="module")
def sink():
    server = MailSink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def malls(tmp_path_factory, sink):
    """The sandbox malls delivering their order mails to `sink`."""
    running = start_sandbox(tmp_path_factory.mktemp("sandbox-orders"), SANDBOX_SMTP_URL=sink.url)
    yield running
    stop_sandbox(running)


def new_address() -> str:
    return f"orders-{uuid.uuid4().hex[:12]}@shop.example"


def store_with(malls, mall: str, order_mail: str = "", items: int = 3) -> dict:
    store = malls.create_store(mall, items=items)
    if order_mail:
        response = requests.post(f"{malls.url}/_sandbox/stores/{store['id']}", json={"order_mail": order_mail},
                                 timeout=10)
        assert response.status_code == 200 and response.json()["order_mail"] == order_mail
    return store


def buy(malls, store: dict, *lines: tuple[dict, int]) -> requests.Response:
    items = [{"code": item["code"], "variant": item["variant"], "quantity": quantity} for item, quantity in lines]
    return requests.post(f"{malls.url}/_sandbox/stores/{store['id']}/orders", json={"items": items}, timeout=10)


def orders(malls, store: dict) -> list[dict]:
    return requests.get(f"{malls.url}/_sandbox/stores/{store['id']}/orders", timeout=10).json()["orders"]


def outbox(malls, store: dict) -> list[dict]:
    return requests.get(f"{malls.url}/_sandbox/stores/{store['id']}/outbox", timeout=10).json()["mails"]


def mail_reaching(malls, store: dict, status: str, timeout: float = 30.0) -> dict:
    """The store's first mail once it is `status`, polled with a deadline."""
    def done():
        mails = outbox(malls, store)
        return mails[0] if mails and mails[0]["status"] == status else None
    return wait_for(done, f"the order mail of store {store['id']} to be {status}", timeout)


def all_sent(malls, store: dict) -> list[dict] | None:
    mails = outbox(malls, store)
    return mails if mails and all(m["status"] == "sent" for m in mails) else None


def order_url(malls, store: dict, number: str, action: str) -> str:
    # Shopify's order names start with '#', which must not end the URL's path.
    return f"{malls.url}/_sandbox/stores/{store['id']}/orders/{quote(number, safe='')}/{action}"


def stocked(malls, store: dict, quantity: int = 5) -> list[dict]:
    """The store's items, each with exactly `quantity` in stock."""
    items = malls.items(store["id"])
    malls.set_stock(store["id"], [{"code": i["code"], "variant": i["variant"], "quantity": quantity} for i in items])
    return items


@pytest.mark.parametrize("mall", MALLS + ["rakuten-ftp"])
def test_a_purchase_lowers_the_malls_stock_at_once_and_mails_the_shop_in_the_malls_format(malls, sink, mall):
    address = new_address()
    store = store_with(malls, mall, address)
    item = stocked(malls, store, 5)[-1]

    response = buy(malls, store, (item, 3))

    assert response.status_code == 201
    body = response.json()
    assert body["mail"] == "queued"
    number = body["order_number"]
    kind = mall.split("-")[0]
    assert re.fullmatch(ORDER_NUMBER[kind], number)
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 2
    [order] = orders(malls, store)
    assert order["number"] == number and order["status"] == "ordered" and order["ordered_at"].endswith("+09:00")
    assert [(line["code"], line["variant"], line["quantity"]) for line in order["items"]] == [
        (item["code"], item["variant"], 3)]

    mail = mail_reaching(malls, store, "sent")
    assert mail["to"] == address and mail["order_number"] == number and mail["attempts"] == 1
    [received] = sink.to(address)
    assert received.rcpt_tos == [address]
    message = message_from_bytes(received.data, policy=policy.default)
    assert received.mail_from == mail["from"] == message["From"].addresses[0].addr_spec
    if mall.startswith("rakuten"):
        assert received.mail_from == "order@rakuten.co.jp"
    part = message.get_body(("plain",))
    assert part.get_content_charset() == CHARSET[kind]
    text = part.get_content()
    assert "\ufffd" not in text  # decoded cleanly with the charset the mail declares
    assert number in message["Subject"] + text and item["name"] in text  # Shopify's text part has no number
    assert QUANTITY_3[kind] in text


def test_a_rakuten_mail_prints_the_items_shohin_bango_as_the_listing_csv_does(malls, sink):
    address = new_address()
    store = store_with(malls, "rakuten", address)
    rows = list(csv.DictReader(io.StringIO(malls.listing_csv(store["id"]).decode("cp932"))))
    numbers = {r["商品管理番号（商品URL）"]: r["商品番号"] for r in rows if r["商品名"]}
    assert numbers["tt-0003"] != "tt-0003"  # some items' 商品番号 differ from their 商品管理番号
    assert numbers["tt-0001"] == "tt-0001"
    item = next(i for i in stocked(malls, store) if i["code"] == "tt-0003")

    assert buy(malls, store, (item, 1)).status_code == 201

    mail_reaching(malls, store, "sent")
    text = message_from_bytes(sink.to(address)[0].data, policy=policy.default).get_body(("plain",)).get_content()
    assert numbers["tt-0003"] in text


@pytest.mark.parametrize("mall", MALLS)
def test_a_purchase_beyond_the_stock_is_refused_and_changes_nothing(malls, sink, mall):
    address = new_address()
    store = store_with(malls, mall, address)
    first, second = stocked(malls, store, 2)[:2]

    response = buy(malls, store, (first, 1), (second, 3))

    assert response.status_code == 409
    assert "在庫不足" in response.json()["error"]
    stock = malls.stock(store["id"])
    assert stock[(first["code"], first["variant"])] == 2  # the line that fitted waits with the rest
    assert stock[(second["code"], second["variant"])] == 2
    assert orders(malls, store) == [] and outbox(malls, store) == []


@pytest.mark.parametrize("mall", MALLS)
def test_an_unknown_item_or_a_quantity_below_one_is_refused(malls, mall):
    store = store_with(malls, mall, new_address())
    item = stocked(malls, store)[0]
    url = f"{malls.url}/_sandbox/stores/{store['id']}/orders"

    unknown = buy(malls, store, ({"code": item["code"] + "-gone", "variant": item["variant"]}, 1))
    assert unknown.status_code == 400 and item["code"] + "-gone" in unknown.json()["error"]
    for quantity in (0, -1, 1.5, "x", True):
        response = requests.post(url, json={"items": [{**item, "quantity": quantity}]}, timeout=10)
        assert response.status_code == 400, quantity
        assert "quantity" in response.json()["error"]
    assert requests.post(url, json={"items": []}, timeout=10).status_code == 400
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 5
    assert orders(malls, store) == []


@pytest.mark.parametrize("mall", MALLS)
def test_cancelling_gives_the_stock_back_and_a_second_cancel_is_refused(malls, mall):
    store = store_with(malls, mall, new_address())
    item = stocked(malls, store, 4)[0]
    number = buy(malls, store, (item, 3)).json()["order_number"]
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 1

    response = requests.post(order_url(malls, store, number, "cancel"), timeout=10)

    assert response.status_code == 200 and response.json()["order"]["status"] == "cancelled"
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 4
    assert orders(malls, store)[0]["status"] == "cancelled"
    again = requests.post(order_url(malls, store, number, "cancel"), timeout=10)
    assert again.status_code == 409 and number in again.json()["error"]
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 4


@pytest.mark.parametrize("mall", MALLS)
def test_rakuten_mails_a_cancellation_notice_and_the_other_malls_none(malls, sink, mall):
    address = new_address()
    store = store_with(malls, mall, address)
    number = buy(malls, store, (stocked(malls, store)[0], 1)).json()["order_number"]

    assert requests.post(order_url(malls, store, number, "cancel"), timeout=10).status_code == 200

    mails = wait_for(lambda: all_sent(malls, store), "the store's mails to be sent")
    assert [m["kind"] for m in mails] == (["order", "cancellation"] if mall == "rakuten" else ["order"])
    assert orders(malls, store)[0]["mail"]["status"] == "sent"  # the order's own mail, not the notice
    if mall == "rakuten":
        notice = message_from_bytes(sink.to(address)[-1].data, policy=policy.default)
        assert "キャンセル" in notice["Subject"] and number in notice.get_body(("plain",)).get_content()


def test_a_shipped_order_cannot_be_cancelled_and_keeps_its_stock_taken(malls):
    store = store_with(malls, "yahoo")
    item = stocked(malls, store, 4)[0]
    number = buy(malls, store, (item, 1)).json()["order_number"]

    assert requests.post(order_url(malls, store, number, "ship"), timeout=10).status_code == 200

    refused = requests.post(order_url(malls, store, number, "cancel"), timeout=10)
    assert refused.status_code == 409 and "発送済み" in refused.json()["error"]
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 3
    unknown = requests.post(order_url(malls, store, "no-such-order", "cancel"), timeout=10)
    assert unknown.status_code == 404


@pytest.mark.parametrize("mall", MALLS)
def test_without_a_registered_address_the_order_is_kept_and_no_mail_is_sent(malls, mall):
    store = store_with(malls, mall)
    item = stocked(malls, store)[0]

    response = buy(malls, store, (item, 1))

    assert response.status_code == 201 and response.json()["mail"] == "no-address"
    [order] = orders(malls, store)
    assert order["number"] == response.json()["order_number"] and order["mail"]["status"] == "no-address"
    assert outbox(malls, store) == []
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 4


def test_the_order_mail_address_must_look_like_one_and_empty_clears_it(malls):
    store = store_with(malls, "rakuten", "orders@shop.example")
    url = f"{malls.url}/_sandbox/stores/{store['id']}"
    for bad in ("not an address", "orders@shop", "<orders@shop.example>", "注文@shop.example", 7):
        response = requests.post(url, json={"order_mail": bad}, timeout=10)
        assert response.status_code == 400, bad
        assert "order_mail" in response.json()["error"]
    assert requests.get(url, timeout=10).json()["order_mail"] == "orders@shop.example"
    assert requests.post(url, json={"order_mail": ""}, timeout=10).json()["order_mail"] == ""


def test_a_temporary_refusal_is_retried_with_growing_waits_until_delivered(malls, sink):
    address = new_address()
    sink.refuse(address, "451 4.3.0 Mailbox busy, try again later", times=2)
    store = store_with(malls, "rakuten", address)
    item = stocked(malls, store)[0]

    assert buy(malls, store, (item, 1)).status_code == 201

    retried = mail_reaching(malls, store, "sent")
    assert retried["attempts"] == 3
    tries = sink.attempts[address]
    assert len(tries) == 3
    assert tries[1] - tries[0] >= 0.9 and tries[2] - tries[1] >= 1.9  # 1 s, then 2 s, as an MTA backs off
    assert len(sink.to(address)) == 1


def test_a_permanent_refusal_fails_the_mail_with_the_reason_and_keeps_the_order(malls, sink):
    address = new_address()
    sink.refuse(address, "550 5.1.1 No such mailbox")
    store = store_with(malls, "amazon", address)
    item = stocked(malls, store)[0]

    assert buy(malls, store, (item, 1)).status_code == 201

    failed = mail_reaching(malls, store, "failed")
    assert failed["attempts"] == 1 and failed["last_error"].startswith("550")
    assert "No such mailbox" in failed["last_error"]
    [order] = orders(malls, store)
    assert order["status"] == "ordered" and order["mail"]["status"] == "failed"
    assert "送信失敗: 550" in requests.get(store["page"], timeout=10).text


def test_a_refused_connection_is_retried_until_the_mail_server_listens(tmp_path):
    port = free_port()
    malls = start_sandbox(tmp_path, SANDBOX_SMTP_URL=f"smtp://127.0.0.1:{port}")
    late = MailSink(port=port)
    try:
        address = new_address()
        store = store_with(malls, "shopify", address)
        item = stocked(malls, store)[0]
        assert buy(malls, store, (item, 1)).status_code == 201
        waiting = wait_for(lambda: [m for m in outbox(malls, store) if m["attempts"] >= 1],
                           "a first delivery attempt")[0]
        assert waiting["status"] == "queued" and "ConnectionRefused" in waiting["last_error"]
        assert waiting["next_try_at"]

        late.start()

        mail_reaching(malls, store, "sent")
        assert [m.rcpt_tos for m in late.to(address)] == [[address]]
    finally:
        late.stop()
        stop_sandbox(malls)


def test_without_sandbox_smtp_url_mails_stay_queued_saying_why(tmp_path):
    malls = start_sandbox(tmp_path, SANDBOX_SMTP_URL=None)
    try:
        store = store_with(malls, "yahoo", new_address())
        item = stocked(malls, store)[0]
        assert buy(malls, store, (item, 1)).json()["mail"] == "queued"
        held = wait_for(lambda: [m for m in outbox(malls, store) if m["last_error"]], "the outbox to say why")[0]
        assert held["status"] == "queued" and held["last_error"] == "SANDBOX_SMTP_URL is not set"
        assert "送信待ち: SANDBOX_SMTP_URL is not set" in requests.get(store["page"], timeout=10).text
        raw = requests.get(held["raw"], timeout=10)
        assert raw.headers["Content-Type"].startswith("message/rfc822")
        assert held["order_number"] in message_from_bytes(raw.content, policy=policy.default).get_body(
            ("plain",)).get_content()
    finally:
        stop_sandbox(malls)


def test_the_store_page_sets_the_address_buys_shows_the_mail_and_cancels(malls, sink):
    store = store_with(malls, "rakuten")
    item = stocked(malls, store, 2)[0]
    page = store["page"]
    session = requests.Session()
    address = new_address()

    saved = session.post(f"{malls.url}/_sandbox/stores/{store['id']}", data={"order_mail": address}, timeout=10)
    assert "注文メールの送り先を保存しました" in saved.text and f'value="{address}"' in saved.text
    bought = session.post(f"{malls.url}/_sandbox/stores/{store['id']}/orders",
                          data={"code": item["code"], "variant": item["variant"], "quantity": "2"}, timeout=10)
    assert bought.url.startswith(page)
    number = orders(malls, store)[0]["number"]
    assert f"受注番号 {number}" in bought.text
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 0
    mail_reaching(malls, store, "sent")
    assert "送信済み" in session.get(page, timeout=10).text

    refused = session.post(f"{malls.url}/_sandbox/stores/{store['id']}/orders",
                           data={"code": item["code"], "variant": item["variant"], "quantity": "1"}, timeout=10)
    assert "在庫不足" in refused.text and len(orders(malls, store)) == 1
    # A browser labels a form post even when the form has no fields.
    cancelled = session.post(order_url(malls, store, number, "cancel"), timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert f"注文 {number} を取り消しました" in cancelled.text and "取消済み" in cancelled.text
    assert malls.stock(store["id"])[(item["code"], item["variant"])] == 2


def test_an_older_sandbox_db_gains_the_order_mail_setting_and_the_order_tables(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE stores (id INTEGER PRIMARY KEY, mall TEXT NOT NULL, name TEXT NOT NULL,"
                " shop TEXT NOT NULL, credentials TEXT NOT NULL, faults TEXT NOT NULL DEFAULT '{}',"
                " created_at REAL NOT NULL)")
    old.execute("INSERT INTO stores VALUES (1, 'rakuten', '古い店', 'old', '{}', '{}', 0)")
    old.commit()
    old.close()

    state = State(str(path))
    try:
        assert state.store(1)["order_mail"] == ""
        state.set_order_mail(1, "orders@shop.example")
        assert state.store(1)["order_mail"] == "orders@shop.example"
        assert state.orders(1) == [] and state.outbox(1) == []
    finally:
        state.close()
    reopened = State(str(path))  # a second open finds the column there and adds nothing
    try:
        assert reopened.store(1)["order_mail"] == "orders@shop.example"
    finally:
        reopened.close()
