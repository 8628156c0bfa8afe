"""The sandbox malls' memory: stores, their catalogs and stock, fault switches and a log of API calls, in one
SQLite file (SANDBOX_DB) so a restart keeps the stock. One connection behind one lock: the sandbox is a
small test double and simplicity beats throughput here."""
from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

MALLS = ("rakuten", "rakuten-ftp", "yahoo", "shopify", "amazon")

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
"""

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
                     shop: Optional[str] = None) -> dict:
        """Create a store with its credentials; `catalog(store_id)` gives its items."""
        now = time.time()
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO stores (mall, name, shop, credentials, created_at) VALUES (?, ?, ?, '{}', ?)",
                (mall, name, shop or "", now),
            )
            store_id = cur.lastrowid
            shop = shop or f"sandbox-{mall.replace('-', '')}-{store_id}"
            creds = issue_credentials(mall, store_id, shop)
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

    def store(self, store_id: int) -> Optional[dict]:
        rows = self.query("SELECT * FROM stores WHERE id = ?", (store_id,))
        return _store(rows[0]) if rows else None

    def stores(self, mall: Optional[str] = None) -> list[dict]:
        if mall:
            rows = self.query("SELECT * FROM stores WHERE mall = ? ORDER BY id", (mall,))
        else:
            rows = self.query("SELECT * FROM stores ORDER BY id")
        return [_store(r) for r in rows]

    def find_store(self, mall: str, **credentials: str) -> Optional[dict]:
        """The store of `mall` whose issued credentials include all the given key/value pairs."""
        for store in self.stores(mall):
            if all(store["credentials"].get(k) == v for k, v in credentials.items()):
                return store
        return None

    def store_by_shop(self, mall: str, shop: str) -> Optional[dict]:
        rows = self.query("SELECT * FROM stores WHERE mall = ? AND shop = ?", (mall, shop))
        return _store(rows[0]) if rows else None

    # Access tokens (OAuth refresh) ---------------------------------------------------------------

    def mint_token(self, store_id: int) -> tuple[str, int]:
        token = "sbx-at-" + secrets.token_hex(16)
        with self.tx() as c:
            c.execute("INSERT INTO tokens (token, store_id, expires_at) VALUES (?, ?, ?)",
                      (token, store_id, time.time() + TOKEN_SECONDS))
        return token, TOKEN_SECONDS

    def store_for_token(self, mall: str, token: str) -> tuple[Optional[dict], bool]:
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

    # Calls ----------------------------------------------------------------------------------------

    def record_call(self, store_id: Optional[int], api: str, status: int, items: int = 0) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO calls (store_id, api, status, items, at) VALUES (?, ?, ?, ?, ?)",
                (store_id, api, status, items, time.time()),
            )

    def calls(self, store_id: int) -> list[dict]:
        rows = self.query("SELECT api, status, items, at FROM calls WHERE store_id = ? ORDER BY id", (store_id,))
        return [dict(r) for r in rows]


def issue_credentials(mall: str, store_id: int, shop: str) -> dict[str, str]:
    """Credentials named exactly as Tatenpo's store takes them (tatenpo.malls.CREDENTIAL_FIELDS)."""
    token = secrets.token_hex(16)
    if mall == "rakuten":
        return {"service_secret": f"SP{store_id}_{secrets.token_hex(8)}", "license_key": f"SL{store_id}_{token}"}
    if mall == "rakuten-ftp":
        return {"ftp_user": f"sandbox{store_id}", "ftp_password": token[:12]}
    if mall == "yahoo":
        return {"seller_id": f"snbx-{store_id}", "access_token": token, "client_id": f"dj00sandbox{store_id}",
                "client_secret": secrets.token_hex(10), "refresh_token": "sbx-rt-" + secrets.token_hex(12)}
    if mall == "shopify":
        return {"shop": shop, "access_token": "shpat_" + token}
    if mall == "amazon":
        return {"seller_id": f"A{store_id:04d}SANDBOX", "access_token": "Atza|" + token,
                "client_id": f"amzn1.application-oa2-client.sandbox{store_id}", "client_secret": secrets.token_hex(10),
                "refresh_token": "Atzr|" + secrets.token_hex(12)}
    raise ValueError(mall)


def _store(row: sqlite3.Row) -> dict:
    data = dict(row)
    data["credentials"] = json.loads(data["credentials"])
    data["faults"] = json.loads(data["faults"])
    return data


def _item(row: sqlite3.Row) -> dict:
    data = dict(row)
    data["extra"] = json.loads(data["extra"] or "{}")
    return data
