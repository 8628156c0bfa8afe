"""The sandbox malls' memory: stores, their catalogs and stock, fault switches, a log of API calls, the orders
bought on the stores and the outbox of their order mails, in one SQLite file (SANDBOX_DB) so a restart keeps
them. One connection behind one lock: the sandbox is a small test double and simplicity beats throughput here."""
from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from . import mall_orders, shopify_webhooks

SCHEMA = """
CREATE TABLE IF NOT EXISTS stores (
    id INTEGER PRIMARY KEY,
    mall TEXT NOT NULL,
    name TEXT NOT NULL,
    shop TEXT NOT NULL,
    credentials TEXT NOT NULL,
    faults TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    store_id INTEGER NOT NULL REFERENCES stores(id),
    code TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    sku TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    option_name TEXT NOT NULL DEFAULT '',
    option_value TEXT NOT NULL DEFAULT '',
    price INTEGER NOT NULL DEFAULT 0,
    quantity INTEGER NOT NULL DEFAULT 0,
    pending_quantity INTEGER,
    visible_at REAL,
    parked INTEGER NOT NULL DEFAULT 0,
    extra TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (store_id, code, variant)
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    store_id INTEGER,
    api TEXT NOT NULL,
    status INTEGER NOT NULL,
    items INTEGER NOT NULL DEFAULT 0,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_calls_store ON calls (store_id, id);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    store_id INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    store_id INTEGER NOT NULL REFERENCES stores(id),
    number TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'ordered',  -- ordered | cancelled | shipped
    ordered_at TEXT NOT NULL,  -- ISO 8601, JST
    items TEXT NOT NULL,  -- JSON: [{code, variant, quantity, price, title, sku, item_number, choices}]
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (store_id, number)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    store_id INTEGER NOT NULL REFERENCES stores(id),
    order_number TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'order',  -- order | cancellation
    mail_from TEXT NOT NULL,  -- the envelope: the mall's sender
    rcpt_to TEXT NOT NULL,  -- the store's order_mail when queued
    raw BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',  -- queued | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_try_at REAL NOT NULL,
    sent_at REAL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_outbox_due ON outbox (status, next_try_at);
-- The store's app: the callback URLs registered for it, and the authorization flows' codes and refresh tokens
-- (sandbox/oauth.py).
CREATE TABLE IF NOT EXISTS oauth_redirects (
    store_id INTEGER NOT NULL REFERENCES stores(id),
    redirect_uri TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (store_id, redirect_uri)
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code TEXT PRIMARY KEY,
    store_id INTEGER NOT NULL REFERENCES stores(id),
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token TEXT PRIMARY KEY,
    store_id INTEGER NOT NULL REFERENCES stores(id),
    created REAL NOT NULL
);
"""

# Columns added after the first release: SANDBOX_DB outlives upgrades, so an older file gains them on open.
ADDED_COLUMNS = {
    "stores": [("order_mail", "TEXT NOT NULL DEFAULT ''")],  # RMS 注文確認メール送り先メールアドレス and its peers
    # The mall's own order status (sandbox/mall_orders.py) and who fulfils the order: '' the shop, 'AFN' Amazon
    # (FBA: the shop's stock does not move).
    "orders": [("mall_status", "TEXT NOT NULL DEFAULT ''"), ("fulfillment", "TEXT NOT NULL DEFAULT ''")],
}

MAIL_KINDS = {"ordered": "order", "cancelled": "cancellation"}  # outbox.kind of the mail an order event sends

PARKED_SECONDS = 24 * 3600  # unknown items' parked stock is dropped after ~24 h
TOKEN_SECONDS = 3600  # Yahoo! ID連携 and Login with Amazon access tokens live one hour


class State:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            present = {row["name"] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            for name, definition in columns:
                if name not in present:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
        # Set whenever a mail joins the outbox, so the delivery thread wakes at once instead of polling.
        self.mail_queued = threading.Event()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    # Stores ---------------------------------------------------------------------------------------

    def create_store(self, mall: str, name: str, catalog: Callable[[int], list[dict[str, Any]]],
                     shop: str | None = None) -> dict:
        """Create a store with its credentials; `catalog(store_id)` gives its items."""
        from .malls import mall as sandbox_mall  # the mall modules import this one

        now = time.time()
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO stores (mall, name, shop, credentials, created_at) VALUES (?, ?, ?, '{}', ?)",
                (mall, name, shop or "", now),
            )
            store_id = cur.lastrowid
            shop = shop or f"sandbox-{mall.replace('-', '')}-{store_id}"
            creds = sandbox_mall(mall).issue_credentials(store_id, shop)
            c.execute("UPDATE stores SET shop = ?, credentials = ? WHERE id = ?", (shop, json.dumps(creds), store_id))
            c.executemany(
                "INSERT INTO items (store_id, code, variant, sku, name, option_name, option_value, price, quantity,"
                " extra, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (store_id, i["code"], i.get("variant", ""), i.get("sku", ""), i.get("name", ""),
                     i.get("option_name", ""), i.get("option_value", ""), i.get("price", 0), i.get("quantity", 0),
                     json.dumps(i.get("extra", {}), ensure_ascii=False), now, now)
                    for i in catalog(store_id)
                ],
            )
        return self.store(store_id)

    def store(self, store_id: int) -> dict | None:
        rows = self.query("SELECT * FROM stores WHERE id = ?", (store_id,))
        return _store(rows[0]) if rows else None

    def stores(self, mall: str | None = None) -> list[dict]:
        if mall:
            rows = self.query("SELECT * FROM stores WHERE mall = ? ORDER BY id", (mall,))
        else:
            rows = self.query("SELECT * FROM stores ORDER BY id")
        return [_store(r) for r in rows]

    def find_store(self, mall: str, **credentials: str) -> dict | None:
        """The store of `mall` whose issued credentials include all the given key/value pairs."""
        for store in self.stores(mall):
            if all(store["credentials"].get(k) == v for k, v in credentials.items()):
                return store
        return None

    def store_by_shop(self, mall: str, shop: str) -> dict | None:
        rows = self.query("SELECT * FROM stores WHERE mall = ? AND shop = ?", (mall, shop))
        return _store(rows[0]) if rows else None

    def set_order_mail(self, store_id: int, address: str) -> None:
        """The address the shop registered in the mall's admin for order mails ('' for none)."""
        with self.tx() as c:
            c.execute("UPDATE stores SET order_mail = ? WHERE id = ?", (address, store_id))

    # Access tokens (OAuth refresh) ---------------------------------------------------------------

    def mint_token(self, store_id: int) -> tuple[str, int]:
        token = "sbx-at-" + secrets.token_hex(16)
        with self.tx() as c:
            c.execute("INSERT INTO tokens (token, store_id, expires_at) VALUES (?, ?, ?)",
                      (token, store_id, time.time() + TOKEN_SECONDS))
        return token, TOKEN_SECONDS

    def store_for_token(self, mall: str, token: str) -> tuple[dict | None, bool]:
        """(store, issued) for an access token: `issued` is True for the token issued with the store (which the
        "expired" fault expires), False for one minted by a refresh."""
        store = self.find_store(mall, access_token=token)
        if store is not None:
            return store, True
        rows = self.query("SELECT store_id FROM tokens WHERE token = ? AND expires_at > ?", (token, time.time()))
        if rows:
            found = self.store(rows[0]["store_id"])
            if found is not None and found["mall"] == mall:
                return found, False
        return None, False

    # Faults ---------------------------------------------------------------------------------------

    def set_faults(self, store_id: int, changes: dict[str, Any]) -> dict:
        with self.tx() as c:
            row = c.execute("SELECT faults FROM stores WHERE id = ?", (store_id,)).fetchone()
            faults = {} if changes.get("clear") else json.loads(row["faults"])
            for key, value in changes.items():
                if key == "clear":
                    continue
                if value in (None, False, 0, ""):
                    faults.pop(key, None)
                else:
                    faults[key] = value
            c.execute("UPDATE stores SET faults = ? WHERE id = ?", (json.dumps(faults), store_id))
        return faults

    def take_fault(self, store_id: int, name: str) -> Any:
        """The fault's value if it fires for this request. A number counts down (fires that many times);
        anything else truthy fires until switched off."""
        with self.tx() as c:
            row = c.execute("SELECT faults FROM stores WHERE id = ?", (store_id,)).fetchone()
            faults = json.loads(row["faults"])
            value = faults.get(name)
            if not value:
                return None
            if isinstance(value, int) and not isinstance(value, bool):
                if value <= 1:
                    faults.pop(name)
                else:
                    faults[name] = value - 1
                c.execute("UPDATE stores SET faults = ? WHERE id = ?", (json.dumps(faults), store_id))
            return value

    def fault_value(self, store_id: int, name: str, default: Any = None) -> Any:
        store = self.store(store_id)
        return store["faults"].get(name, default) if store else default

    # Items ----------------------------------------------------------------------------------------

    def settle(self, store_id: int) -> None:
        """Delayed reflection: quantities whose time has come become what the mall shows. Parked stock of
        unknown items is dropped after a day, as RMS does."""
        now = time.time()
        with self.tx() as c:
            c.execute("DELETE FROM items WHERE store_id = ? AND parked = 1 AND created < ?",
                      (store_id, now - PARKED_SECONDS))
            c.execute(
                "UPDATE items SET quantity = pending_quantity, pending_quantity = NULL, visible_at = NULL"
                " WHERE store_id = ? AND pending_quantity IS NOT NULL AND visible_at <= ?",
                (store_id, now),
            )

    def items(self, store_id: int, include_parked: bool = False) -> list[dict]:
        self.settle(store_id)
        sql = "SELECT * FROM items WHERE store_id = ?" + ("" if include_parked else " AND parked = 0") + " ORDER BY id"
        return [_item(r) for r in self.query(sql, (store_id,))]

    def items_by_key(self, store_id: int, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """Known (not parked) items for (code, variant) keys."""
        self.settle(store_id)
        found: dict[tuple[str, str], dict] = {}
        wanted = set(keys)
        codes = sorted({k[0] for k in wanted})
        for start in range(0, len(codes), 500):
            chunk = codes[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.query(
                f"SELECT * FROM items WHERE store_id = ? AND parked = 0 AND code IN ({marks})", (store_id, *chunk)
            )
            for row in rows:
                key = (row["code"], row["variant"])
                if key in wanted:
                    found[key] = _item(row)
        return found

    def set_extra(self, store_id: int, code: str, variant: str, changes: dict[str, Any]) -> None:
        """Change an item's extra fields (None removes one)."""
        with self.tx() as c:
            row = c.execute("SELECT id, extra FROM items WHERE store_id = ? AND code = ? AND variant = ?",
                            (store_id, code, variant)).fetchone()
            if row is None:
                return
            extra = json.loads(row["extra"] or "{}")
            for key, value in changes.items():
                if value is None:
                    extra.pop(key, None)
                else:
                    extra[key] = value
            c.execute("UPDATE items SET extra = ? WHERE id = ?", (json.dumps(extra, ensure_ascii=False), row["id"]))

    def set_quantities(self, store_id: int, changes: list[tuple[str, str, int]], delay: float = 0.0,
                       park_unknown: bool = True) -> list[bool]:
        """Set absolute quantities. Unknown items are parked (kept, not shown) when park_unknown. Returns, per
        change, whether the item was known."""
        now = time.time()
        known: list[bool] = []
        with self.tx() as c:
            for code, variant, quantity in changes:
                row = c.execute(
                    "SELECT id, parked FROM items WHERE store_id = ? AND code = ? AND variant = ?",
                    (store_id, code, variant),
                ).fetchone()
                if row is None:
                    known.append(False)
                    if park_unknown:
                        c.execute(
                            "INSERT INTO items (store_id, code, variant, quantity, parked, created, updated)"
                            " VALUES (?, ?, ?, ?, 1, ?, ?)",
                            (store_id, code, variant, quantity, now, now),
                        )
                    continue
                known.append(not row["parked"])
                if delay > 0 and not row["parked"]:
                    c.execute(
                        "UPDATE items SET pending_quantity = ?, visible_at = ?, updated = ? WHERE id = ?",
                        (quantity, now + delay, now, row["id"]),
                    )
                else:
                    c.execute(
                        "UPDATE items SET quantity = ?, pending_quantity = NULL, visible_at = NULL, updated = ?"
                        " WHERE id = ?",
                        (quantity, now, row["id"]),
                    )
        return known

    def delete_item(self, store_id: int, code: str, variant: str) -> bool:
        with self.tx() as c:
            cur = c.execute("DELETE FROM items WHERE store_id = ? AND code = ? AND variant = ?", (store_id, code, variant))
            return cur.rowcount > 0

    # Orders ---------------------------------------------------------------------------------------

    def place_order(self, store_id: int, lines: list[tuple[str, str, int]], ordered_at: datetime,
                    number_for: Callable[[int], str],
                    mail_for: Callable[[dict, dict], tuple[str, bytes]], fba: bool = False,
                    lose_mail: bool = False) -> tuple[dict, dict | None]:
        """A purchase as the mall takes it, all or nothing: the stock of every line falls at once, the order is
        kept, and its order mail joins the outbox when the shop registered an order-mail address.
        `number_for(sequence)` names the store's n-th order; `mail_for(store, order)` gives (sender, raw mail).
        Returns (order, mail or None). Refuses an unknown item (400) and a line beyond the stock (409).
        `fba`: fulfilled by Amazon from its own warehouse: the shop's stock does not move and no mail goes.
        `lose_mail`: the order mail is lost on its way (never queued): only the order API tells the shop."""
        self.settle(store_id)
        now = time.time()
        with self.tx() as c:
            store = _store(c.execute("SELECT * FROM stores WHERE id = ?", (store_id,)).fetchone())
            items = []
            for code, variant, quantity in lines:
                row = c.execute("SELECT * FROM items WHERE store_id = ? AND code = ? AND variant = ? AND parked = 0",
                                (store_id, code, variant)).fetchone()
                if row is None:
                    raise OrderRefused(f"この商品はモールにありません: {_label(code, variant)}", 400)
                # A quantity waiting for its reflection delay is already the mall's stock; only the page lags.
                available = row["quantity"] if row["pending_quantity"] is None else row["pending_quantity"]
                if fba:
                    items.append(_order_line(_item(row), quantity))
                    continue
                if quantity > available:
                    raise OrderRefused(
                        f"在庫不足: {_label(code, variant)} の在庫は{available}個、注文は{quantity}個です。", 409)
                c.execute("UPDATE items SET quantity = MAX(quantity - ?, 0), pending_quantity = pending_quantity - ?,"
                          " updated = ? WHERE id = ?", (quantity, quantity, now, row["id"]))
                items.append(_order_line(_item(row), quantity))
            sequence = c.execute("SELECT COALESCE(MAX(sequence), 0) + 1 FROM orders WHERE store_id = ?",
                                 (store_id,)).fetchone()[0]
            mall_status = mall_orders.default(store["mall"], "ordered")
            order = {"number": number_for(sequence), "status": "ordered", "ordered_at": ordered_at.isoformat(),
                     "items": items, "mall_status": mall_status, "fulfillment": "AFN" if fba else "",
                     "updated": now}
            c.execute("INSERT INTO orders (store_id, number, sequence, status, ordered_at, items, created, updated,"
                      " mall_status, fulfillment) VALUES (?, ?, ?, 'ordered', ?, ?, ?, ?, ?, ?)",
                      (store_id, order["number"], sequence, order["ordered_at"],
                       json.dumps(items, ensure_ascii=False), now, now, mall_status, order["fulfillment"]))
            mail = None
            if store["order_mail"] and not fba and not lose_mail:
                sender, raw = mail_for(store, order)
                mail = self._queue_mail(c, store, order["number"], MAIL_KINDS["ordered"], sender, raw, now)
        if mail is not None:
            self.mail_queued.set()
        shopify_webhooks.order_changed(self, store_id, order)  # orders/create to the store's subscriptions
        return order, mail

    def change_order(self, store_id: int, number: str, status: str,
                     mail_for: Callable[[dict, dict], tuple[str, bytes] | None] | None = None,
                     mall_status: str | None = None) -> dict:
        """Cancel or ship an order that is still 'ordered' (409 otherwise, 404 for an unknown number). A
        cancellation gives the mall its stock back; `mail_for(store, order)` may give a notice to queue.
        `mall_status`: the mall's own status to show (its default for `status` otherwise). A change of the
        mall's status that keeps the plain one (楽天 100 → 300, 800 → 900) only updates the order."""
        now = time.time()
        with self.tx() as c:
            row = c.execute("SELECT * FROM orders WHERE store_id = ? AND number = ?", (store_id, number)).fetchone()
            if row is None:
                raise OrderRefused(f"注文がありません: {number}", 404)
            store = _store(c.execute("SELECT * FROM stores WHERE id = ?", (store_id,)).fetchone())
            explicit = mall_status is not None
            mall_status = mall_status if explicit else mall_orders.default(store["mall"], status)
            if row["status"] == status and explicit and mall_status != row["mall_status"]:
                c.execute("UPDATE orders SET mall_status = ?, updated = ? WHERE id = ?", (mall_status, now, row["id"]))
                return {**_order(row), "mall_status": mall_status, "updated": now}
            if row["status"] != "ordered":
                done = "取消済み" if row["status"] == "cancelled" else "発送済み"
                raise OrderRefused(f"注文 {number} は{done}です。", 409)
            order = _order(row)
            if status == "cancelled" and row["fulfillment"] != "AFN":
                for line in order["items"]:
                    c.execute("UPDATE items SET quantity = quantity + ?, pending_quantity = pending_quantity + ?,"
                              " updated = ? WHERE store_id = ? AND code = ? AND variant = ? AND parked = 0",
                              (line["quantity"], line["quantity"], now, store_id, line["code"], line["variant"]))
            c.execute("UPDATE orders SET status = ?, mall_status = ?, updated = ? WHERE id = ?",
                      (status, mall_status, now, row["id"]))
            order.update(status=status, mall_status=mall_status, updated=now)
            composed = mail_for(store, order) if mail_for is not None and store["order_mail"] else None
            mail = self._queue_mail(c, store, number, MAIL_KINDS[status], *composed, now) if composed else None
        if mail is not None:
            self.mail_queued.set()
        shopify_webhooks.order_changed(self, store_id, order)  # orders/cancelled or orders/fulfilled
        return order

    def orders_by_number(self, store_id: int, numbers: list[str]) -> list[dict]:
        """The store's orders with these numbers, in the order asked (unknown numbers are left out)."""
        found = {row["number"]: _order(row) for row in self.query(
            f"SELECT * FROM orders WHERE store_id = ? AND number IN ({','.join('?' * len(numbers))})",
            (store_id, *numbers))} if numbers else {}
        return [found[n] for n in numbers if n in found]

    def orders_updated(self, store_id: int, after: float, before: float) -> list[dict]:
        """The store's orders last updated in [after, before), oldest update first (the order APIs' searches)."""
        rows = self.query("SELECT * FROM orders WHERE store_id = ? AND updated >= ? AND updated < ?"
                          " ORDER BY updated, id", (store_id, after, before))
        return [_order(row) for row in rows]

    def orders(self, store_id: int, recent: int | None = None) -> list[dict]:
        """The store's orders, oldest first (`recent`: only the newest N, newest first), each with the state of
        its order mail: 'no-address' when none was queued because the shop had registered no address."""
        sql = ("SELECT o.*, m.id AS mail_id, m.status AS mail_status, m.last_error AS mail_error FROM orders o"
               " LEFT JOIN outbox m ON m.store_id = o.store_id AND m.order_number = o.number AND m.kind = 'order'"
               " WHERE o.store_id = ?")
        if recent:
            rows = self.query(sql + " ORDER BY o.id DESC LIMIT ?", (store_id, recent))
        else:
            rows = self.query(sql + " ORDER BY o.id", (store_id,))
        orders = []
        for row in rows:
            order = _order(row)
            order["mail"] = {"id": row["mail_id"], "status": row["mail_status"] or "no-address",
                             "last_error": row["mail_error"]}
            orders.append(order)
        return orders

    # Outbox ---------------------------------------------------------------------------------------

    def _queue_mail(self, c: sqlite3.Connection, store: dict, number: str, kind: str, sender: str, raw: bytes,
                    now: float) -> dict:
        cur = c.execute(
            "INSERT INTO outbox (store_id, order_number, kind, mail_from, rcpt_to, raw, next_try_at, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (store["id"], number, kind, sender, store["order_mail"], raw, now, now),
        )
        return _mail(c.execute("SELECT * FROM outbox WHERE id = ?", (cur.lastrowid,)).fetchone())

    def outbox(self, store_id: int) -> list[dict]:
        """The store's mails, oldest first, without their bytes."""
        rows = self.query("SELECT * FROM outbox WHERE store_id = ? ORDER BY id", (store_id,))
        return [_mail(r) for r in rows]

    def mail(self, store_id: int, mail_id: int) -> dict | None:
        """One mail with its raw bytes."""
        rows = self.query("SELECT * FROM outbox WHERE store_id = ? AND id = ?", (store_id, mail_id))
        return _mail(rows[0], with_raw=True) if rows else None

    def due_mail(self, now: float) -> dict | None:
        """The oldest queued mail whose next try has come, with its raw bytes."""
        rows = self.query("SELECT * FROM outbox WHERE status = 'queued' AND next_try_at <= ? ORDER BY id LIMIT 1",
                          (now,))
        return _mail(rows[0], with_raw=True) if rows else None

    def next_try_at(self) -> float | None:
        """When the earliest queued mail is due, or None when the outbox has nothing to send."""
        rows = self.query("SELECT MIN(next_try_at) FROM outbox WHERE status = 'queued'")
        return rows[0][0]

    def mail_tried(self, mail_id: int, status: str, error: str | None = None,
                   next_try_at: float | None = None) -> None:
        """The outcome of one delivery attempt: 'sent', 'failed', or 'queued' again until next_try_at."""
        now = time.time()
        with self.tx() as c:
            c.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
                " next_try_at = COALESCE(?, next_try_at), sent_at = ? WHERE id = ?",
                (status, error, next_try_at, now if status == "sent" else None, mail_id),
            )

    def hold_mails(self, reason: str) -> None:
        """Say why queued mails are not being sent (no SMTP server configured); they stay queued."""
        with self.tx() as c:
            c.execute("UPDATE outbox SET last_error = ? WHERE status = 'queued'", (reason,))

    # Calls ----------------------------------------------------------------------------------------

    def record_call(self, store_id: int | None, api: str, status: int, items: int = 0) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO calls (store_id, api, status, items, at) VALUES (?, ?, ?, ?, ?)",
                (store_id, api, status, items, time.time()),
            )

    def calls(self, store_id: int) -> list[dict]:
        rows = self.query("SELECT api, status, items, at FROM calls WHERE store_id = ? ORDER BY id", (store_id,))
        return [dict(r) for r in rows]


class OrderRefused(Exception):
    """A purchase or order change the mall refuses; `status` is the HTTP status that says so."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _store(row: sqlite3.Row) -> dict:
    data = dict(row)
    data["credentials"] = json.loads(data["credentials"])
    data["faults"] = json.loads(data["faults"])
    return data


def _item(row: sqlite3.Row) -> dict:
    data = dict(row)
    data["extra"] = json.loads(data["extra"] or "{}")
    return data


def _order_line(item: dict, quantity: int) -> dict:
    """What an order keeps of a bought item: a snapshot, so later catalog edits do not rewrite the order."""
    choices = [[item["option_name"], item["option_value"]]] if item["option_name"] else []
    return {"code": item["code"], "variant": item["variant"], "quantity": quantity, "price": item["price"],
            "title": item["name"], "sku": item["sku"], "item_number": item["extra"].get("item_number", ""),
            "choices": choices}


def _label(code: str, variant: str) -> str:
    return f"{code} / {variant}" if variant else code


def _order(row: sqlite3.Row) -> dict:
    return {"number": row["number"], "status": row["status"], "ordered_at": row["ordered_at"],
            "items": json.loads(row["items"]), "mall_status": row["mall_status"], "fulfillment": row["fulfillment"],
            "updated": row["updated"]}


def _mail(row: sqlite3.Row, with_raw: bool = False) -> dict:
    data = dict(row)
    raw = data.pop("raw")
    if with_raw:
        data["raw"] = bytes(raw)
    return data
