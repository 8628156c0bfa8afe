"""受注API polling: every ORDER_POLL_SECONDS (a store may set its own) a store whose order route is on has its
mall's orders read, from its cursor less an overlap window, and each applied by the one rule every door shares
(tatenpo.orders.mall_orders.apply, source "api"). The mall's rate limit is kept by the connectors' shared pacer.

- One poller per store: a Redis lock (SET NX with a lifetime past the longest poll), so the sweep, a second
  worker and `orders poll` never read the same store at once; the unique (store, number) of orders keeps even a
  lock lost to a Redis restart from doubling an order.
- The cursor follows the newest last-updated time the mall reported (its 注文日 where the mall reports no update
  time, 楽天); it never moves back. The next poll reads from the cursor less ORDER_POLL_OVERLAP_SECONDS, so an
  order the mall shows late is still seen; applying a report twice changes nothing.
- A poll that fails keeps the mall's reason on the store (shown on the top page like a failed push, and on the
  store settings) and moves nothing; the next due poll tries again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import exists, or_, select

from tatenpo import malls
from tatenpo.malls.base import MallError
from tatenpo.malls.order_reading import can_read_orders
from tatenpo.models import Order, OrderLine, OrderStatus, Store, utcnow
from tatenpo.orders import mall_orders
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import redis

log = logging.getLogger(__name__)

LOCK_KEY = "tatenpo:order-poll:{store_id}"
LOCK_SECONDS = 900  # past the poll job's timeout (jobs.poll_orders): a dead poller's lock goes by itself
OPEN_LIMIT = 2000  # open orders read again per poll (楽天), newest first


class PollBusy(Exception):
    """Another poller holds the store."""


@dataclass
class Polled:
    store_id: int
    since: Optional[datetime] = None
    cursor: Optional[datetime] = None
    orders: list[dict] = field(default_factory=list)  # the orders created or changed
    seen: int = 0  # reports the mall gave
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


def interval(store: Store) -> int:
    return store.order_poll_seconds or int(current_app.config["ORDER_POLL_SECONDS"])


def can_poll(store: Store) -> bool:
    """The store's mall has an order API Tatenpo reads."""
    try:
        return can_read_orders(malls.mall(store.mall))
    except ValueError:
        return False


def due(now: Optional[datetime] = None) -> list[int]:
    """Stores whose order route is on and whose last poll (success or failure) is at least their interval ago.
    One query; the interval check runs on the few stores it returns."""
    now = now or utcnow()
    stores = db.session.execute(
        select(Store.id, Store.mall, Store.order_poll_seconds, Store.order_polled_at, Store.order_poll_error_at)
        .where(Store.order_api.is_(True)).order_by(Store.id)
    ).all()
    default = int(current_app.config["ORDER_POLL_SECONDS"])
    found = []
    for row in stores:
        try:
            if not can_read_orders(malls.mall(row.mall)):
                continue
        except ValueError:
            continue
        last = max((t for t in (row.order_polled_at, row.order_poll_error_at) if t is not None), default=None)
        # A little slack, so a tick that lands a moment early does not wait a whole extra interval.
        if last is None or now - last >= timedelta(seconds=(row.order_poll_seconds or default) - 2):
            found.append(row.id)
    return found


def poll(store_id: int, since: Optional[datetime] = None) -> Polled:
    """Read the store's orders from its mall now and apply them. `since` (naive UTC) reads from there instead of
    the cursor. Raises PollBusy when another poller holds the store; a mall's refusal is kept and returned."""
    lock = redis().lock(LOCK_KEY.format(store_id=store_id), timeout=LOCK_SECONDS, thread_local=False)
    if not lock.acquire(blocking=False):
        raise PollBusy(store_id)
    try:
        return _poll(store_id, since)
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile: nothing to give back
            log.warning("the order-poll lock of store %s expired during the poll", store_id)


def _poll(store_id: int, since: Optional[datetime]) -> Polled:
    store = db.session.get(Store, store_id)
    if store is None:
        return Polled(store_id, error="no such store")
    started = utcnow()
    overlap = timedelta(seconds=int(current_app.config["ORDER_POLL_OVERLAP_SECONDS"]))
    if since is None:
        since = (store.order_cursor_at - overlap if store.order_cursor_at is not None
                 else started - timedelta(hours=int(current_app.config["ORDER_POLL_FIRST_HOURS"])))
    result = Polled(store_id, since=since, cursor=store.order_cursor_at)
    if not can_poll(store):
        return _failed(store, result, _("%(mall)s has no order API Tatenpo reads.", mall=malls.label(store.mall)))
    connector = None
    try:
        from tatenpo.sync.push import open_connector

        connector = open_connector(store)
        reports = connector.read_orders(since, open_numbers=_open_numbers(store.id),
                                        known=_complete_numbers(store.id, since))
    except MallError as exc:
        return _failed(store, result, exc.message)
    except Exception as exc:  # a connector bug or the network: the reason is kept, the next poll tries again
        log.exception("order poll of store %s failed", store_id)
        return _failed(store, result, _("The order API could not be read: %(error)s", error=str(exc)[:300]))
    finally:
        if connector is not None:
            connector.close()
    result.seen = len(reports)
    store_id = store.id
    for report in reports:
        store = db.session.get(Store, store_id)
        try:
            applied = mall_orders.apply(store, report, source="api")
        except Exception as exc:  # one order that cannot be applied: those before it stay; the cursor waits
            log.exception("order %s of store %s could not be applied", report.number, store_id)
            return _failed(store, result, _("Order %(number)s could not be applied: %(error)s",
                                            number=report.number, error=str(exc)[:300]))
        if applied.created or applied.changed:
            result.orders.append({"number": applied.order.number, "created": applied.created,
                                  "status": applied.order.status, "mall_status": applied.order.mall_status,
                                  "sources": list(applied.order.sources or []),
                                  "moves_stock": applied.order.moves_stock})
        db.session.commit()  # each order on its own: a stock change is pushed at once, and a later failure keeps it
    store = db.session.get(Store, store_id)
    newest = max((r.updated_at or r.ordered_at for r in reports if (r.updated_at or r.ordered_at)), default=None)
    cursor = store.order_cursor_at
    if newest is not None and (cursor is None or newest > cursor):
        cursor = newest
    elif cursor is None:
        cursor = started  # nothing yet: from now on (less the overlap)
    store.order_cursor_at = result.cursor = cursor
    store.order_polled_at = utcnow()
    store.order_poll_error = None
    store.order_poll_error_at = None
    db.session.commit()
    return result


def _failed(store: Store, result: Polled, message: str) -> Polled:
    db.session.rollback()
    store = db.session.get(Store, result.store_id)
    store.order_poll_error = str(message)
    store.order_poll_error_at = utcnow()
    db.session.commit()
    result.error = str(message)
    return result


def _open_numbers(store_id: int) -> list[str]:
    """Orders Tatenpo still holds as received: a mall that cannot search by last change (楽天) reads them again."""
    return list(db.session.scalars(
        select(Order.number).where(Order.store_id == store_id, Order.status == OrderStatus.RECEIVED.value)
        .order_by(Order.id.desc()).limit(OPEN_LIMIT)))


def _complete_numbers(store_id: int, since: datetime) -> set[str]:
    """Orders of the window whose lines Tatenpo has, all linked: their lines need not be asked again."""
    unlinked = exists().where(OrderLine.order_id == Order.id, OrderLine.listing_id.is_(None))
    has_lines = exists().where(OrderLine.order_id == Order.id)
    return set(db.session.scalars(
        select(Order.number).where(Order.store_id == store_id, has_lines, ~unlinked,
                                   or_(Order.updated_at >= since - timedelta(days=1),
                                       Order.received_at >= since - timedelta(days=1)))))


def failing_stores() -> list[Store]:
    """Stores whose last order poll failed (the top page shows them like failed pushes)."""
    return list(db.session.scalars(
        select(Store).where(Store.order_api.is_(True), Store.order_poll_error_at.is_not(None)).order_by(Store.id)))


class RouteError(ValueError):
    """A setting of the order API route that cannot be saved; the message is for the user."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


MIN_INTERVAL, MAX_INTERVAL = 30, 86_400


def set_route(store: Store, *, on: bool, interval_text: str) -> None:
    """Turn the store's order API route on or off and set its own poll interval ('' for ORDER_POLL_SECONDS).
    Raises RouteError (nothing changed) for a mall without an order API or a bad interval. The caller commits."""
    from tatenpo.stock.inventory import StockError, parse_quantity

    interval = None
    text = (interval_text or "").strip()
    if text:
        try:
            interval = parse_quantity(text)
        except StockError as exc:
            raise RouteError(exc.message) from exc
        if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
            raise RouteError(_("The order poll interval must be from %(low)s to %(high)s seconds (or empty).",
                               low=MIN_INTERVAL, high=MAX_INTERVAL))
    if on and not can_poll(store):
        raise RouteError(_("%(mall)s has no order API Tatenpo reads.", mall=malls.label(store.mall)))
    if on and not store.order_api:
        store.order_poll_error = None  # a fresh start: the first poll says how it goes
        store.order_poll_error_at = None
    store.order_api = on
    store.order_poll_seconds = interval
