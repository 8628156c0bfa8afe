"""Benchmark: one edit of a part shared by 1,000 セット商品, each listed on 4 stores, against an edit of a product
with 4 listings.

The shared part's edit schedules 4,000 set listings (inventory.schedule_sets_of: one INSERT … SELECT … ON
CONFLICT, the sets' 販売可能数 computed in the database), besides its own 4. Each edit is `inventory.set_stock`
and its commit, timed from the call to the end of the commit, with the sync schedule emptied (untimed) before
each, so every round does the same work. Prints the median of each and

    ratio = median edit time of the shared part ÷ median edit time of the product with 4 listings   (target ≤ 20)

and the statements each edit ran (the shared part's must not grow with the number of sets).

    .venv/bin/python bench/sets_edit.py [--sets 1000] [--stores 4] [--rounds 15] [--database URL]

Without --database it runs on a fresh SQLite file (the default installation); a PostgreSQL database given is
emptied first: give it one of its own.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TATENPO_INSTANCE", tempfile.mkdtemp(prefix="tatenpo-bench-"))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import delete, event, insert, select  # noqa: E402

from tatenpo import create_app  # noqa: E402
from tatenpo.models import Listing, Product, SetPart, Store, SyncEntry  # noqa: E402
from tatenpo.platform.extensions import db  # noqa: E402
from tatenpo.stock import inventory  # noqa: E402

TARGET = 20


class Statements:
    """Counts the statements the driver runs while on."""

    def __init__(self, engine) -> None:
        self.count = 0
        self.on = False
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args) -> None:
        if self.on:
            self.count += 1


def build(sets: int, stores: int) -> tuple[int, int]:
    """The catalog: a shared part, one own part per set, `sets` sets of (shared ×1, own ×2), a plain product;
    every set and the plain product listed on each of `stores` stores. Returns (shared part id, plain id)."""
    db.drop_all()
    db.create_all()
    shops = [Store(mall=mall, name=f"店{n}", auto_sync=True, settings={})
             for n, mall in zip(range(stores), ("rakuten", "yahoo", "amazon", "shopify") * stores)]
    db.session.add_all(shops)
    shared = Product(code="SHARED", name="共通部品", on_hand=5000)
    plain = Product(code="PLAIN", name="単品", on_hand=50)
    db.session.add_all([shared, plain])
    db.session.flush()
    db.session.execute(insert(Product), [
        {"code": f"OWN-{n:05d}", "name": "部品", "on_hand": 100, "allocated": 0} for n in range(sets)
    ] + [{"code": f"SET-{n:05d}", "name": "セット", "on_hand": 0, "allocated": 0, "is_set": True} for n in range(sets)])
    ids = dict(db.session.execute(select(Product.code, Product.id)).all())
    db.session.execute(insert(SetPart), [
        row for n in range(sets) for row in (
            {"set_id": ids[f"SET-{n:05d}"], "part_id": shared.id, "quantity": 1},
            {"set_id": ids[f"SET-{n:05d}"], "part_id": ids[f"OWN-{n:05d}"], "quantity": 2},
        )
    ])
    listed = [ids[f"SET-{n:05d}"] for n in range(sets)] + [plain.id]
    db.session.execute(insert(Listing), [
        {"store_id": shop.id, "product_id": product_id, "item_code": f"item-{product_id}", "variant_code": "",
         "code": f"item-{product_id}", "title": "", "attributes": {}, "sync_enabled": True, "drifted": False,
         "search_text": ""}
        for shop in shops for product_id in listed
    ])
    db.session.commit()
    return shared.id, plain.id


def edit(product_id: int, quantity: int, statements: Statements) -> tuple[float, int, int]:
    """One timed edit (set_stock + commit) after an untimed emptying of the schedule: (seconds, statements,
    entries it scheduled)."""
    db.session.execute(delete(SyncEntry))
    db.session.commit()
    statements.count, statements.on = 0, True
    started = time.perf_counter()
    inventory.set_stock(product_id, quantity)
    db.session.commit()
    seconds = time.perf_counter() - started
    statements.on = False
    scheduled = db.session.scalar(select(db.func.count()).select_from(SyncEntry))
    return seconds, statements.count, scheduled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--database", default=None, help="default: a new SQLite file")
    args = parser.parse_args()
    url = args.database or "sqlite:///" + os.path.join(os.environ["TATENPO_INSTANCE"], "bench.db")
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "CREDENTIAL_KEY": Fernet.generate_key().decode(),
                      "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"})
    with app.app_context():
        shared, plain = build(args.sets, args.stores)
        statements = Statements(db.engine)
        results: dict[str, list[tuple[float, int, int]]] = {"plain": [], "shared": []}
        for round_no in range(args.rounds):  # interleaved: a neighbour's burst hits both alike
            results["plain"].append(edit(plain, 50 + round_no % 2, statements))
            results["shared"].append(edit(shared, 5000 + round_no % 2, statements))
        db.session.remove()
    summary = {}
    for name, rows in results.items():
        summary[name] = (statistics.median(r[0] for r in rows), rows[-1][1], rows[-1][2])
    expected = args.sets * args.stores  # the shared part itself is not listed: only its sets
    assert summary["shared"][2] == expected, (summary["shared"], expected)
    assert summary["plain"][2] == args.stores, summary["plain"]
    ratio = summary["shared"][0] / summary["plain"][0]
    print(f"{args.sets:,} sets × {args.stores} stores, median of {args.rounds} edits each ({url.split(':')[0]}):")
    for name, label in (("plain", f"a product with {args.stores} listings"),
                        ("shared", f"the part shared by {args.sets:,} sets")):
        seconds, count, scheduled = summary[name]
        print(f"  {label}: {seconds * 1000:.1f} ms, {count} statements, {scheduled:,} listings scheduled")
    print(f"ratio = {ratio:.1f}   (target ≤ {TARGET})  {'OK' if ratio <= TARGET else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
