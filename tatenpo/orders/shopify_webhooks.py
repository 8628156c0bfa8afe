"""Shopify order webhooks: orders/create, orders/cancelled and orders/fulfilled posted by Shopify to
POST /webhooks/shopify/<store's webhook token>, each applied to the store's orders through the one rule every
order door shares (tatenpo.orders.mall_orders.apply, source "webhook").

What Shopify does, and what this module does about it (sources in docs/malls/shopify.md):
- It signs the raw body: base64 HMAC-SHA256 with the app's client secret in X-Shopify-Hmac-Sha256. A delivery
  whose signature does not match is refused before anything is read (`BadSignature`, the door answers 401).
- It may deliver one event more than once; X-Shopify-Event-Id is the same on every copy (X-Shopify-Webhook-Id
  when the event id is absent). The id is kept with the topic (WebhookDelivery) in the transaction that applies the order, so
  a repeat finds it and changes nothing; ids are kept KEEP_DAYS, far beyond Shopify's 4-hour retry window.
- It waits five seconds for an answer and retries otherwise: the work here is one order, applied in the
  request. A failure rolls everything back (the delivery id too), so Shopify's retry applies it then.

The webhook route is switched on per store (`turn_on`): Tatenpo subscribes its own URL through the Admin API
(webhookSubscriptionCreate), as a custom app does; subscriptions an app creates are signed with its client
secret, which the shop enters beside the access token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from tatenpo import malls
from tatenpo.malls.base import MallError
from tatenpo.models import OrderStatus, Store, WebhookDelivery, utcnow
from tatenpo.orders import mall_orders
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db

log = logging.getLogger(__name__)

# Shopify's topic (X-Shopify-Topic) → the Admin API's WebhookSubscriptionTopic enum value.
TOPICS = {"orders/create": "ORDERS_CREATE", "orders/cancelled": "ORDERS_CANCELLED",
          "orders/fulfilled": "ORDERS_FULFILLED"}
KEEP_DAYS = 7
MAX_BYTES = 5 * 1024 * 1024  # an order with hundreds of lines is far smaller

SUBSCRIBE = """mutation Subscribe($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}"""
SUBSCRIBE_COST = 10


class WebhookProblem(ValueError):
    """A delivery that cannot be taken; the message is for the log and the answer."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


class BadSignature(WebhookProblem):
    """X-Shopify-Hmac-Sha256 missing or wrong (or no client secret to check it with): HTTP 401."""


@dataclass
class Outcome:
    status: str  # applied / repeat / ignored
    topic: str
    order_number: str = ""
    created: bool = False
    changed: bool = False


# The store's door ------------------------------------------------------------------------------------------

def issue_token(store: Store) -> str:
    """A new secret path part for the store's webhook URL (the old URL stops working)."""
    store.webhook_token = secrets.token_urlsafe(24)
    return store.webhook_token


def store_for_token(token: str) -> Optional[Store]:
    """The store whose webhook URL has this token, compared in constant time after the lookup."""
    if not token or len(token) > 64:
        return None
    store = db.session.scalar(select(Store).where(Store.webhook_token == token))
    if store is None or not hmac.compare_digest(store.webhook_token.encode(), token.encode()):
        return None
    return store


def signature_ok(secret: str, body: bytes, header: Optional[str]) -> bool:
    """Shopify's check: base64(HMAC-SHA256(client secret, raw body)) equals the header, compared in constant time."""
    if not secret or not header:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode())


def sign(secret: str, body: bytes) -> str:
    """The header value Shopify would send for `body` (the CLI and tests use it to post a delivery)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def receive(store: Store, body: bytes, headers: Mapping[str, str]) -> Outcome:
    """Verify one delivery, take it once and apply its order. Commits; raises BadSignature / WebhookProblem
    (nothing changed) and lets database errors through (rolled back by the caller: Shopify retries)."""
    secret = credentials.read(store).get("client_secret", "")
    if not signature_ok(secret, body, headers.get("X-Shopify-Hmac-Sha256")):
        raise BadSignature(_l("The signature (X-Shopify-Hmac-Sha256) does not match this store's API secret key."))
    topic = (headers.get("X-Shopify-Topic") or "").strip()
    # Kept per topic: one event may fire several topics (an order created already fulfilled), each to be applied.
    event = (headers.get("X-Shopify-Event-Id") or headers.get("X-Shopify-Webhook-Id") or "").strip()
    delivery = f"{topic}:{event}"[:100] if event else ""
    store.last_webhook_at = utcnow()  # a signed delivery: the route works
    if topic not in TOPICS:
        db.session.commit()
        return Outcome("ignored", topic)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookProblem(_l("The body is not JSON.")) from None
    mall_order = order_from_payload(payload)
    if delivery and not _first_time(store, delivery, topic, mall_order.number):
        db.session.commit()
        return Outcome("repeat", topic, mall_order.number)
    applied = mall_orders.apply(store, mall_order, source="webhook")
    _prune()
    db.session.commit()
    return Outcome("applied", topic, mall_order.number, applied.created, applied.changed)


def _first_time(store: Store, delivery: str, topic: str, number: str) -> bool:
    """Keep the delivery id; False when it was kept before (a repeat). A savepoint: two copies arriving at
    once insert one row, and the other finds it."""
    seen = db.session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.store_id == store.id,
                                                              WebhookDelivery.delivery_id == delivery))
    if seen is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(WebhookDelivery(store_id=store.id, delivery_id=delivery, topic=topic[:64],
                                           order_number=number[:64]))
            db.session.flush()
    except IntegrityError:
        return False
    return True


def _prune() -> None:
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < utcnow() - timedelta(days=KEEP_DAYS)))


# The order in the payload --------------------------------------------------------------------------------

def order_from_payload(payload: Any) -> mall_orders.MallOrder:
    """The REST order resource Shopify posts, as the order every door reports: the number as the order mail
    prints it (`name`, e.g. #1001), one line per line item (SKU, quantity, title, the variant title's values),
    cancelled when `cancelled_at` is set, shipped when `fulfillment_status` is "fulfilled"."""
    if not isinstance(payload, dict) or not str(payload.get("name") or "").strip():
        raise WebhookProblem(_l("The body is not a Shopify order (no name)."))
    lines = []
    for item in payload.get("line_items") or []:
        if not isinstance(item, dict):
            continue
        quantity = _int(item.get("quantity"))
        if quantity is None or quantity < 1:
            continue  # a line removed by an order edit reports 0
        lines.append(mall_orders.MallOrderLine(
            # The SKU names the variant; its options are in `name` ("Title - 20包 / 3袋"). They are not passed as
            # choices: a listing from the products CSV keeps none, and choices that differ would veto the SKU match.
            item_code=str(item.get("sku") or "").strip(), variant_code="", quantity=quantity,
            title=str(item.get("name") or item.get("title") or ""), unit_price=_yen(item.get("price"))))
    if not lines:
        raise WebhookProblem(_l("The order has no line items."))
    status, mall_status = order_status(bool(payload.get("cancelled_at")), payload.get("fulfillment_status"))
    return mall_orders.MallOrder(
        number=str(payload["name"]).strip()[:64], status=status, mall_status=mall_status, lines=tuple(lines),
        ordered_at=parse_time(payload.get("created_at")), updated_at=parse_time(payload.get("updated_at")))


# The REST fulfillment_status → the GraphQL displayFulfillmentStatus the order API door shows
# (tatenpo.malls.shopify_orders), so the order page says the same whichever door spoke last.
FULFILLMENT = {"": "UNFULFILLED", "unfulfilled": "UNFULFILLED", "partial": "PARTIALLY_FULFILLED", "fulfilled": "FULFILLED",
               "restocked": "RESTOCKED"}


def order_status(cancelled: bool, fulfillment_status: Any) -> tuple[OrderStatus, str]:
    """(status, the mall's status as shown) of a Shopify order: cancelled when cancelled_at is set, shipped when
    fully fulfilled, else received (unfulfilled or partly fulfilled)."""
    if cancelled:
        return OrderStatus.CANCELLED, "CANCELLED"
    shown = FULFILLMENT.get(str(fulfillment_status or "").strip().lower(), str(fulfillment_status).upper())
    return (OrderStatus.SHIPPED if shown == "FULFILLED" else OrderStatus.RECEIVED), shown


def parse_time(value: Any) -> Optional[datetime]:
    """ISO 8601 with an offset (2026-03-14T10:23:45+09:00) → naive UTC; None when absent or unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _int(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _yen(value: Any) -> Optional[int]:
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        return None


# Switching the route on -----------------------------------------------------------------------------------

def turn_on(store: Store, url_for_token) -> list[str]:
    """Subscribe the store's webhook URL (`url_for_token(token)`, absolute) to the three order topics through
    the Admin API, and switch the route on. Returns the topics subscribed; raises WebhookProblem with the
    mall's reason (the store is left as it was, the reason kept in `webhook_error`). The caller commits."""
    values = credentials.read(store)
    if not values.get("client_secret"):
        raise WebhookProblem(_l("Enter the app's API secret key first: Shopify signs order webhooks with it."))
    if not store.webhook_token:
        issue_token(store)
    connector = malls.connector_for(store.mall, store.endpoint, values)
    try:
        subscribed = [topic for topic in TOPICS if _subscribe(connector, TOPICS[topic], url_for_token(store.webhook_token))]
    except MallError as exc:
        store.webhook_error = exc.message
        raise WebhookProblem(exc.message) from None
    finally:
        connector.close()
    store.webhooks_on = True
    store.webhook_error = None
    return subscribed


def turn_off(store: Store) -> None:
    """Deliveries to the store's URL are refused from now on (404): Shopify stops after its retries and removes
    a subscription that keeps failing (docs/malls/shopify.md)."""
    store.webhooks_on = False


def _subscribe(connector, topic: str, uri: str) -> bool:
    # The connector's GraphQL call (pacing, throttling and errors classified the way every Shopify call is).
    data = connector._query(SUBSCRIBE, {"topic": topic, "webhookSubscription": {"uri": uri, "format": "JSON"}},
                            SUBSCRIBE_COST)
    errors = (data.get("webhookSubscriptionCreate") or {}).get("userErrors") or []
    for error in errors:
        # Shopify refuses a second subscription of the same address to a topic: it is subscribed already.
        if "already been taken" in str(error.get("message") or ""):
            return True
    if errors:
        raise MallError("; ".join(str(e.get("message")) for e in errors), transient=False, code="webhook-subscribe")
    return True
