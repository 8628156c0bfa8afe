"""Shopify's order webhooks, as the sandbox shop sends them (facts and sources: docs/malls/shopify.md):

- An app subscribes an HTTPS address to a topic with the Admin API's `webhookSubscriptionCreate(topic:
  ORDERS_CREATE, webhookSubscription: {uri, format: JSON})` (`subscribe`, called from sandbox/shopify.py);
  the same address twice for one topic is the userError "Address for this topic has already been taken".
  The sandbox admin can subscribe one too: POST /_sandbox/stores/<id>/webhooks {"topic", "uri"}.
- When an order is placed, cancelled or shipped (sandbox/state.py calls `order_changed`), each subscription of
  orders/create, orders/cancelled or orders/fulfilled gets the order as the REST resource, JSON, POSTed with
  X-Shopify-Topic, X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the body with the app's client secret),
  X-Shopify-Shop-Domain, X-Shopify-API-Version, X-Shopify-Webhook-Id, X-Shopify-Event-Id and
  X-Shopify-Triggered-At.
- Delivery is in the background. An answer other than 2xx, or none within five seconds, is a failure, retried
  with the same body and ids — Shopify retries 8 times over 4 hours; the sandbox keeps the 8 retries and the
  exponential backoff but compresses the schedule (1 s, 2 s, 4 s … at most RETRY_CAP) so a test can watch it.
- Shopify may deliver an event more than once: POST /_sandbox/stores/<id>/webhooks/<delivery>/resend sends
  a delivery again with its ids unchanged, as such a repeat arrives.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from flask import Blueprint, jsonify, request

log = logging.getLogger(__name__)

JST = timezone(timedelta(hours=9))
API_VERSION = "2026-04"
TOPICS = {"ORDERS_CREATE": "orders/create", "ORDERS_CANCELLED": "orders/cancelled",
          "ORDERS_FULFILLED": "orders/fulfilled"}
# The sandbox order's status → the topic its change fires.
STATUS_TOPICS = {"ordered": "orders/create", "cancelled": "orders/cancelled", "shipped": "orders/fulfilled"}
RETRIES = 8
RETRY_CAP = 30.0
TIMEOUT = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id INTEGER PRIMARY KEY,
    store_id INTEGER NOT NULL REFERENCES stores(id),
    topic TEXT NOT NULL,  -- orders/create …
    uri TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (store_id, topic, uri)
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY,
    store_id INTEGER NOT NULL REFERENCES stores(id),
    topic TEXT NOT NULL,
    uri TEXT NOT NULL,
    body BLOB NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    triggered_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',  -- queued | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    next_try_at REAL NOT NULL,
    delivered_at REAL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_webhook_deliveries_due ON webhook_deliveries (status, next_try_at);
"""

bp = Blueprint("shopify_webhooks", __name__)

_ready: set[int] = set()
_senders: dict[int, "Sender"] = {}
_senders_lock = threading.Lock()


def _tables(state) -> None:
    if id(state) not in _ready:
        with state.lock:
            state.conn.executescript(SCHEMA)
        _ready.add(id(state))


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# Subscriptions ---------------------------------------------------------------------------------------------

def subscribe(state, store: dict, topic: str, uri: str) -> tuple[dict | None, list[dict]]:
    """webhookSubscriptionCreate: (the subscription, userErrors). `topic` is the API's enum (ORDERS_CREATE)."""
    _tables(state)
    if topic not in TOPICS:
        return None, [{"field": ["topic"], "message": f"The sandbox sends {', '.join(TOPICS)} only."}]
    if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
        return None, [{"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}]
    with state.tx() as c:
        taken = c.execute("SELECT id FROM webhook_subscriptions WHERE store_id = ? AND topic = ? AND uri = ?",
                          (store["id"], TOPICS[topic], uri)).fetchone()
        if taken is not None:
            return None, [{"field": ["webhookSubscription", "callbackUrl"],
                           "message": "Address for this topic has already been taken"}]
        cur = c.execute("INSERT INTO webhook_subscriptions (store_id, topic, uri, created) VALUES (?, ?, ?, ?)",
                        (store["id"], TOPICS[topic], uri, time.time()))
    return {"id": f"gid://shopify/WebhookSubscription/{cur.lastrowid}", "topic": topic, "uri": uri}, []


def graphql_create(store: dict, variables: dict, version: str) -> tuple[dict, int]:
    """The GraphQL handler of `webhookSubscriptionCreate(topic:, webhookSubscription: {uri | callbackUrl, format})`
    (sandbox/shopify.py takes the data from the variables, as real clients send it)."""
    from .common import state

    given = variables.get("webhookSubscription") or {}
    uri = given.get("uri") or given.get("callbackUrl")  # callbackUrl: the field before 2025-10
    created, errors = subscribe(state(), store, str(variables.get("topic") or ""), uri)
    return {"data": {"webhookSubscriptionCreate": {"webhookSubscription": created, "userErrors": errors}}}, 1


def subscriptions(state, store_id: int) -> list[dict]:
    _tables(state)
    return [dict(r) for r in state.query("SELECT id, topic, uri, created FROM webhook_subscriptions"
                                         " WHERE store_id = ? ORDER BY id", (store_id,))]


def deliveries(state, store_id: int) -> list[dict]:
    _tables(state)
    rows = state.query("SELECT id, topic, uri, webhook_id, event_id, status, attempts, last_status, last_error,"
                       " delivered_at FROM webhook_deliveries WHERE store_id = ? ORDER BY id", (store_id,))
    return [dict(r) for r in rows]


# What an order change sends ------------------------------------------------------------------------------

def order_changed(state, store_id: int, order: dict) -> None:
    """sandbox/state.py's one call after an order was placed, cancelled or shipped: queue the topic's webhook
    for every subscription of a Shopify store (nothing for other malls or without subscriptions)."""
    store = state.store(store_id)
    topic = STATUS_TOPICS.get(order.get("status", ""))
    if store is None or store["mall"] != "shopify" or topic is None:
        return
    _tables(state)
    targets = [s for s in subscriptions(state, store_id) if s["topic"] == topic]
    if not targets:
        return
    body = json.dumps(rest_order(state, store, order), ensure_ascii=False).encode()
    event_id = str(uuid.uuid4())  # one event; each subscription gets its own delivery of it
    triggered = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    now = time.time()
    with state.tx() as c:
        for target in targets:
            c.execute("INSERT INTO webhook_deliveries (store_id, topic, uri, body, webhook_id, event_id, triggered_at,"
                      " next_try_at, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (store_id, topic, target["uri"], body, str(uuid.uuid4()), event_id, triggered, now, now))
    _sender(state).wake()


def rest_order(state, store: dict, order: dict) -> dict[str, Any]:
    """The order as Shopify's REST Order resource (the webhook payload), in yen."""
    row = state.query("SELECT id, created, updated FROM orders WHERE store_id = ? AND number = ?",
                      (store["id"], order["number"]))
    order_id = 5_000_000_000 + (row[0]["id"] if row else 0)
    updated = datetime.fromtimestamp(row[0]["updated"], JST).isoformat(timespec="seconds") if row else None
    status = order["status"]
    lines, total = [], 0
    for n, item in enumerate(order["items"], start=1):
        values = [value for _name, value in item.get("choices") or []]
        variant_title = " / ".join(values) if values else None
        total += item["price"] * item["quantity"]
        lines.append({
            "id": order_id * 100 + n, "admin_graphql_api_id": f"gid://shopify/LineItem/{order_id * 100 + n}",
            "title": item["title"], "variant_title": variant_title,
            "name": f"{item['title']} - {variant_title}" if variant_title else item["title"],
            "sku": item.get("sku") or None, "quantity": item["quantity"],
            "current_quantity": 0 if status == "cancelled" else item["quantity"],
            "fulfillable_quantity": item["quantity"] if status == "ordered" else 0,
            "fulfillment_status": "fulfilled" if status == "shipped" else None,
            "price": f"{item['price']}.00", "requires_shipping": True, "taxable": True,
        })
    return {
        "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}", "name": order["number"],
        "order_number": int(order["number"].lstrip("#")) if order["number"].lstrip("#").isdigit() else None,
        "email": "buyer@example.com", "currency": "JPY", "presentment_currency": "JPY",
        "created_at": order["ordered_at"], "processed_at": order["ordered_at"], "updated_at": updated,
        "cancelled_at": updated if status == "cancelled" else None,
        "cancel_reason": "customer" if status == "cancelled" else None,
        "financial_status": "refunded" if status == "cancelled" else "paid",
        "fulfillment_status": "fulfilled" if status == "shipped" else None,
        "total_price": f"{total}.00", "subtotal_price": f"{total}.00", "line_items": lines,
    }


# Delivery ---------------------------------------------------------------------------------------------------

def retry_delay(attempts: int) -> float:
    return min(2.0 ** (attempts - 1), RETRY_CAP)


class Sender(threading.Thread):
    """The one thread that posts queued deliveries, oldest first, and retries failures."""

    def __init__(self, state) -> None:
        super().__init__(name="sandbox-shopify-webhooks", daemon=True)
        self.state = state
        self.queued = threading.Event()
        self.session = requests.Session()

    def wake(self) -> None:
        self.queued.set()

    def run(self) -> None:
        while True:
            self.queued.clear()
            self.queued.wait(self.deliver_due())

    def deliver_due(self) -> float | None:
        while (due := self._due()) is not None:
            self.attempt(due)
        rows = self.state.query("SELECT MIN(next_try_at) FROM webhook_deliveries WHERE status = 'queued'")
        nxt = rows[0][0]
        return None if nxt is None else max(0.0, nxt - time.time())

    def _due(self) -> dict | None:
        rows = self.state.query("SELECT * FROM webhook_deliveries WHERE status = 'queued' AND next_try_at <= ?"
                                " ORDER BY id LIMIT 1", (time.time(),))
        return dict(rows[0]) if rows else None

    def attempt(self, delivery: dict) -> None:
        status, error = post(self.state, self.session, delivery)
        attempts = delivery["attempts"] + 1
        with self.state.tx() as c:
            if status is not None and 200 <= status < 300:
                c.execute("UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_status = ?,"
                          " last_error = NULL, delivered_at = ? WHERE id = ?",
                          (attempts, status, time.time(), delivery["id"]))
            elif attempts > RETRIES:
                c.execute("UPDATE webhook_deliveries SET status = 'failed', attempts = ?, last_status = ?,"
                          " last_error = ? WHERE id = ?", (attempts, status, error, delivery["id"]))
            else:
                c.execute("UPDATE webhook_deliveries SET attempts = ?, last_status = ?, last_error = ?,"
                          " next_try_at = ? WHERE id = ?",
                          (attempts, status, error, time.time() + retry_delay(attempts), delivery["id"]))


def post(state, session: requests.Session, delivery: dict) -> tuple[int | None, str | None]:
    """One POST of a delivery, signed with the store's client secret now; (HTTP status or None, error)."""
    store = state.store(delivery["store_id"])
    secret = (store or {}).get("credentials", {}).get("client_secret", "")
    body = bytes(delivery["body"])
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": delivery["topic"],
               "X-Shopify-Hmac-Sha256": sign(secret, body),
               "X-Shopify-Shop-Domain": f"{(store or {}).get('shop', '')}.myshopify.com",
               "X-Shopify-API-Version": API_VERSION, "X-Shopify-Webhook-Id": delivery["webhook_id"],
               "X-Shopify-Event-Id": delivery["event_id"], "X-Shopify-Triggered-At": delivery["triggered_at"]}
    try:
        response = session.post(delivery["uri"], data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


def _sender(state) -> Sender:
    with _senders_lock:
        sender = _senders.get(id(state))
        if sender is None:
            sender = _senders[id(state)] = Sender(state)
            sender.start()
        return sender


# Admin --------------------------------------------------------------------------------------------------

def _state():
    from .common import state

    return state()


@bp.get("/_sandbox/stores/<int:store_id>/webhooks")
def list_webhooks(store_id: int):
    state = _state()
    if state.store(store_id) is None:
        return jsonify({"error": "no such store"}), 404
    return jsonify({"subscriptions": subscriptions(state, store_id), "deliveries": deliveries(state, store_id)})


@bp.post("/_sandbox/stores/<int:store_id>/webhooks")
def add_webhook(store_id: int):
    """As the shop would in its admin: {"topic": "orders/create" or ORDERS_CREATE, "uri": "https://…"}."""
    state = _state()
    store = state.store(store_id)
    if store is None or store["mall"] != "shopify":
        return jsonify({"error": "no such Shopify store"}), 404
    data = request.get_json(silent=True) or {}
    topic = str(data.get("topic") or "")
    topic = next((enum for enum, name in TOPICS.items() if name == topic), topic)
    created, errors = subscribe(state, store, topic, data.get("uri"))
    if errors:
        return jsonify({"userErrors": errors}), 422
    return jsonify({"webhookSubscription": created}), 201


@bp.post("/_sandbox/stores/<int:store_id>/webhooks/<int:delivery_id>/resend")
def resend(store_id: int, delivery_id: int):
    """Deliver a webhook again with the same ids: the repeat Shopify warns apps about."""
    state = _state()
    _tables(state)
    rows = state.query("SELECT * FROM webhook_deliveries WHERE store_id = ? AND id = ?", (store_id, delivery_id))
    if not rows:
        return jsonify({"error": "no such delivery"}), 404
    status, error = post(state, requests.Session(), dict(rows[0]))
    return jsonify({"status": status, "error": error})
