"""Shopify order webhooks at POST /webhooks/shopify/<token>, through the real database: the signature is checked
over the raw body, repeats change nothing, each status applies its stock rule once, and the same order from
the order mail and the webhook is one order."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from sandbox.order_mails import compose
from tatenpo.models import (
    Order,
    OrderStatus,
    Product,
    StockChangeKind,
    StockHistory,
    Store,
    WebhookDelivery,
)
from tatenpo.orders import intake, reading, shopify_webhooks
from tatenpo.platform.extensions import db

SECRET = "shpss_0123456789abcdef"
TOKEN = "whk-token-0123456789"


@pytest.fixture
def shop(app, make):
    store = make.store("shopify", secrets={"shop": "sakura", "access_token": "shpat_x", "client_secret": SECRET},
                       webhooks_on=True, webhook_token=TOKEN, order_mail_address="order-9-zz@orders.tatenpo.local")
    tea = make.product(code="GT-20X3", on_hand=10)
    listing = make.listing(store, tea, item_code="gid://shopify/InventoryItem/101", variant_code="",
                           attributes={"sku": "GT-20x3"}, mall_quantity=10)
    return type("Shop", (), dict(store=store, tea=tea, listing=listing))


def order_payload(name="#1001", *, cancelled=False, fulfilled=False, quantity=2, updated="2026-11-30T10:00:00+09:00"):
    return {
        "id": 5001, "name": name, "order_number": int(name.strip("#")), "currency": "JPY",
        "created_at": "2026-11-30T10:00:00+09:00", "updated_at": updated,
        "cancelled_at": "2026-11-30T11:00:00+09:00" if cancelled else None, "cancel_reason": "customer" if cancelled else None,
        "financial_status": "paid", "fulfillment_status": "fulfilled" if fulfilled else None,
        "line_items": [{"id": 9001, "variant_id": 7001, "product_id": 6001, "title": "有機緑茶 ティーバッグ",
                        "variant_title": "20包 / 3袋", "name": "有機緑茶 ティーバッグ - 20包 / 3袋", "sku": "GT-20x3", "quantity": quantity, "price": "2980.00"}],
    }


def deliver(client, payload, *, topic="orders/create", event_id="ev-1", secret=SECRET, token=TOKEN, signature=None):
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Event-Id": event_id, "X-Shopify-Webhook-Id": f"wh-{event_id}",
               "X-Shopify-Shop-Domain": "sakura.myshopify.com", "X-Shopify-API-Version": "2026-04",
               "X-Shopify-Hmac-Sha256": signature if signature is not None else shopify_webhooks.sign(secret, body),
               "Content-Type": "application/json"}
    return client.post(f"/webhooks/shopify/{token}", data=body, headers=headers)


def stock(app, product_id):
    with app.app_context():
        product = db.session.get(Product, product_id)
        return product.on_hand, product.allocated


def moves(app, kind):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(StockHistory).where(StockHistory.kind == kind.value))


def the_order(app, number="#1001"):
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.number == number))
        if order is not None:
            db.session.expunge(order)
        return order


def test_create_allocates_once_and_marks_the_route(app, client, shop):
    response = deliver(client, order_payload())
    assert response.status_code == 200, response.text
    assert stock(app, shop.tea.id) == (10, 2)
    order = the_order(app)
    assert order.status == OrderStatus.RECEIVED.value and order.sources == ["webhook"]
    assert order.mall_status == "UNFULFILLED"
    with app.app_context():
        store = db.session.get(Store, shop.store.id)
        assert store.last_webhook_at is not None
        line = db.session.scalar(select(Order).where(Order.number == "#1001")).lines[0]
        assert line.listing_id == shop.listing.id and line.title == "有機緑茶 ティーバッグ - 20包 / 3袋"
        assert line.unit_price == 2980


def test_wrong_signature_is_refused_and_changes_nothing(app, client, shop):
    payload = order_payload()
    response = deliver(client, payload, secret="shpss_not-the-apps-secret")
    assert response.status_code == 401
    response = deliver(client, payload, signature="")
    assert response.status_code == 401
    body = json.dumps(payload).encode()
    tampered = dict(payload, line_items=[dict(payload["line_items"][0], quantity=50)])
    response = deliver(client, tampered, signature=shopify_webhooks.sign(SECRET, body))
    assert response.status_code == 401
    assert the_order(app) is None
    assert stock(app, shop.tea.id) == (10, 0)
    with app.app_context():
        assert db.session.get(Store, shop.store.id).last_webhook_at is None
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_unknown_token_and_route_off_are_not_found(app, client, make, shop):
    assert deliver(client, order_payload(), token="no-such-token").status_code == 404
    make.store("rakuten", webhooks_on=True, webhook_token="rakuten-token-0123456789")
    assert deliver(client, order_payload(), token="rakuten-token-0123456789").status_code == 404  # Shopify only
    with app.app_context():
        db.session.get(Store, shop.store.id).webhooks_on = False
        db.session.commit()
    assert deliver(client, order_payload()).status_code == 404
    assert the_order(app) is None


def test_repeats_are_taken_once(app, client, shop):
    for _ in range(3):
        assert deliver(client, order_payload(), event_id="ev-same").status_code == 200
    assert stock(app, shop.tea.id) == (10, 2)
    assert moves(app, StockChangeKind.ORDER) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
    # A repeat is recognised by its id even when its body would now mean something else.
    assert deliver(client, order_payload(quantity=5), event_id="ev-same").text.strip() == "repeat"
    assert stock(app, shop.tea.id) == (10, 2)
    # One event may fire several topics: each topic is taken once.
    assert deliver(client, order_payload(cancelled=True), topic="orders/cancelled", event_id="ev-same").text.strip() == "applied"
    assert the_order(app).status == OrderStatus.CANCELLED.value and stock(app, shop.tea.id) == (10, 0)


def test_create_then_cancelled_releases_once(app, client, shop):
    deliver(client, order_payload(), event_id="ev-1")
    for event in ("ev-2", "ev-3"):  # a second cancelled event (another subscription, a new id) changes nothing
        assert deliver(client, order_payload(cancelled=True, updated="2026-11-30T11:00:00+09:00"),
                       topic="orders/cancelled", event_id=event).status_code == 200
    assert stock(app, shop.tea.id) == (10, 0)
    assert moves(app, StockChangeKind.CANCELLATION) == 1
    assert the_order(app).status == OrderStatus.CANCELLED.value


def test_fulfilled_ships_once(app, client, shop):
    deliver(client, order_payload(), event_id="ev-1")
    for event in ("ev-2", "ev-3"):
        deliver(client, order_payload(fulfilled=True, updated="2026-11-30T12:00:00+09:00"), topic="orders/fulfilled",
                event_id=event)
    assert stock(app, shop.tea.id) == (8, 0)
    assert moves(app, StockChangeKind.SHIPMENT) == 1
    order = the_order(app)
    assert order.status == OrderStatus.SHIPPED.value and order.mall_status == "FULFILLED"


def test_late_create_after_fulfilled_moves_nothing_back(app, client, shop):
    """Deliveries may come out of order: a create arriving after the fulfilment is older and changes nothing."""
    deliver(client, order_payload(fulfilled=True, updated="2026-11-30T12:00:00+09:00"), topic="orders/fulfilled",
            event_id="ev-2")
    deliver(client, order_payload(), event_id="ev-1")
    assert stock(app, shop.tea.id) == (8, 0)
    assert the_order(app).status == OrderStatus.SHIPPED.value


def test_mail_and_webhook_are_one_order(app, client, shop):
    raw = compose("shopify", shop_name="さくら茶舗", to="order-9-zz@orders.tatenpo.local", order_number="#1001",
                  ordered_at=datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc),
                  items=[{"code": "gid://shopify/InventoryItem/101", "variant": "", "sku": "GT-20x3", "item_number": "",
                          "title": "有機緑茶 ティーバッグ", "choices": [("内容量", "20包")], "quantity": 2, "price": 2980}])
    with app.app_context():
        mail = intake.receive(raw, db.session.get(Store, shop.store.id), recipient="order-9-zz@orders.tatenpo.local",
                              via="shell")
        assert reading.read(mail.id).status == "order"
    assert stock(app, shop.tea.id) == (10, 2)
    assert deliver(client, order_payload()).status_code == 200
    assert deliver(client, order_payload(fulfilled=True, updated="2026-11-30T12:00:00+09:00"), topic="orders/fulfilled",
                   event_id="ev-2").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    order = the_order(app)
    assert order.sources == ["mail", "webhook"] and order.status == OrderStatus.SHIPPED.value
    assert stock(app, shop.tea.id) == (8, 0)
    assert moves(app, StockChangeKind.ORDER) == 1 and moves(app, StockChangeKind.SHIPMENT) == 1


def test_other_topics_and_bad_bodies(app, client, shop):
    response = deliver(client, {"id": 1}, topic="products/update")
    assert response.status_code == 200 and response.text.strip() == "ignored"
    assert deliver(client, {"id": 1, "line_items": []}).status_code == 400
    assert deliver(client, dict(order_payload(), line_items=[])).status_code == 400
    assert the_order(app) is None


def test_old_delivery_ids_are_pruned(app, client, shop):
    from datetime import timedelta

    from tatenpo.models import utcnow

    with app.app_context():
        db.session.add(WebhookDelivery(store_id=shop.store.id, delivery_id="ev-old", topic="orders/create",
                                       received_at=utcnow() - timedelta(days=shopify_webhooks.KEEP_DAYS + 1)))
        db.session.commit()
    deliver(client, order_payload(), event_id="ev-new")
    with app.app_context():
        kept = set(db.session.scalars(select(WebhookDelivery.delivery_id)))
    assert kept == {"orders/create:ev-new"}


def test_signature_check_is_shopifys():
    # The example from Shopify's docs shape: base64 of the raw HMAC digest, not hex.
    body = b'{"id":1}'
    header = shopify_webhooks.sign("secret", body)
    assert shopify_webhooks.signature_ok("secret", body, header)
    assert not shopify_webhooks.signature_ok("secret", body + b" ", header)
    assert not shopify_webhooks.signature_ok("", body, header)
    assert not shopify_webhooks.signature_ok("secret", body, None)


# Over real HTTP: the sandbox shop subscribes Tatenpo's URL and posts its webhooks to a running Tatenpo ---------

@pytest.fixture
def served(app):
    """This test's app answering real HTTP on a free port (the sandbox's sender posts to it)."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    server.shutdown()
    thread.join(10)


def test_sandbox_webhooks_reach_tatenpo_once(app, make, sandbox, served):
    import requests

    from .sandbox_helpers import wait_for

    remote = sandbox.create_store("shopify", items=3)
    item = sandbox.items(remote["id"])[0]
    sandbox.set_stock(remote["id"], [{"code": item["code"], "variant": item["variant"], "quantity": 10}])
    store = make.store("shopify", endpoint=remote["endpoint"], secrets=remote["credentials"])
    tea = make.product(code="SBX-TEA", on_hand=20)
    make.listing(store, tea, item_code=item["code"], variant_code=item["variant"], attributes={"sku": item["sku"]})
    with app.app_context():
        kept = db.session.get(Store, store.id)
        topics = shopify_webhooks.turn_on(kept, lambda token: f"{served}/webhooks/shopify/{token}")
        db.session.commit()
        assert topics == list(shopify_webhooks.TOPICS)
        # Switching on again subscribes nothing twice (Shopify: "Address for this topic has already been taken").
        shopify_webhooks.turn_on(kept, lambda token: f"{served}/webhooks/shopify/{token}")
        db.session.commit()
    hooks = requests.get(f"{sandbox.url}/_sandbox/stores/{remote['id']}/webhooks", timeout=10).json()
    assert sorted(s["topic"] for s in hooks["subscriptions"]) == ["orders/cancelled", "orders/create", "orders/fulfilled"]

    bought = requests.post(f"{sandbox.url}/_sandbox/stores/{remote['id']}/orders",
                           json={"items": [{"code": item["code"], "variant": item["variant"], "quantity": 3}]}, timeout=10)
    number = bought.json()["order_number"]
    wait_for(lambda: stock(app, tea.id) == (20, 3), "the orders/create webhook to allocate")
    requests.post(f"{sandbox.url}/_sandbox/stores/{remote['id']}/orders/{requests.utils.quote(number, safe='')}/cancel",
                  timeout=10).raise_for_status()
    wait_for(lambda: stock(app, tea.id) == (20, 0), "the orders/cancelled webhook to release")
    deliveries = wait_for(lambda: [d for d in requests.get(f"{sandbox.url}/_sandbox/stores/{remote['id']}/webhooks",
                                                           timeout=10).json()["deliveries"]
                                   if d["status"] == "delivered"] or None, "delivered webhooks")
    # Shopify's repeats: the same deliveries again change nothing.
    for delivery in deliveries:
        again = requests.post(f"{sandbox.url}/_sandbox/stores/{remote['id']}/webhooks/{delivery['id']}/resend",
                              timeout=10).json()
        assert again["status"] == 200
    assert stock(app, tea.id) == (20, 0)
    order = the_order(app, number)
    assert order.status == OrderStatus.CANCELLED.value and order.sources == ["webhook"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StockHistory)
                                 .where(StockHistory.kind == StockChangeKind.CANCELLATION.value)) == 1
        assert db.session.get(Store, store.id).last_webhook_at is not None


def test_sandbox_retries_a_failed_delivery(app, make, sandbox, served):
    """Tatenpo away (the route off: 404) → the sandbox retries like Shopify; once it answers, the order arrives."""
    import requests

    from .sandbox_helpers import wait_for

    remote = sandbox.create_store("shopify", items=2)
    item = sandbox.items(remote["id"])[0]
    sandbox.set_stock(remote["id"], [{"code": item["code"], "variant": item["variant"], "quantity": 10}])
    store = make.store("shopify", endpoint=remote["endpoint"], secrets=remote["credentials"])
    tea = make.product(code="SBX-TEA-2", on_hand=5)
    make.listing(store, tea, item_code=item["code"], variant_code=item["variant"], attributes={"sku": item["sku"]})
    with app.app_context():
        kept = db.session.get(Store, store.id)
        shopify_webhooks.turn_on(kept, lambda token: f"{served}/webhooks/shopify/{token}")
        shopify_webhooks.turn_off(kept)
        db.session.commit()
    requests.post(f"{sandbox.url}/_sandbox/stores/{remote['id']}/orders",
                  json={"items": [{"code": item["code"], "variant": item["variant"], "quantity": 1}]},
                  timeout=10).raise_for_status()
    url = f"{sandbox.url}/_sandbox/stores/{remote['id']}/webhooks"
    failed = wait_for(lambda: [d for d in requests.get(url, timeout=10).json()["deliveries"] if d["attempts"] >= 1]
                      or None, "a failed attempt")
    assert failed[0]["last_status"] == 404 and failed[0]["status"] == "queued"
    assert stock(app, tea.id) == (5, 0)
    with app.app_context():
        db.session.get(Store, store.id).webhooks_on = True
        db.session.commit()
    wait_for(lambda: stock(app, tea.id) == (5, 1), "the retried delivery", timeout=60)


def test_only_the_webhook_route_is_csrf_exempt(app, client, auth, shop):
    auth.login(role="admin")
    app.config["WTF_CSRF_ENABLED"] = True
    assert deliver(client, order_payload()).status_code == 200  # Shopify sends no CSRF token
    refused = client.post(f"/settings/stores/{shop.store.id}/webhooks", data={"action": "off"})
    assert refused.status_code == 400  # every other form keeps its CSRF check
    with app.app_context():
        assert db.session.get(Store, shop.store.id).webhooks_on
