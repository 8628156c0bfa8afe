"""Benchmark: the database cost of one push cycle follows the due entries, not the catalog's size.

One cycle = the sweep's "which stores are due" + claiming 1,000 due entries with their lease, renewing and
reading them per batch, recording 1,000 SyncAttempts and closing the entries. It runs against a catalog of
10,000 listings, then of 1,000,000 listings, on PostgreSQL, and prints

    ratio = DB time of the cycle at 1,000,000 listings ÷ DB time at 10,000 listings   (target ≤ 1.5)
    the cycle's DB time at 1,000,000 listings                                          (target < 1 s)

Only the database is measured: the connector used here accepts every item without a network call (the
network's cost is what bench/sync_full_push.py measures). DB time is the time spent inside the driver's
execute calls, summed with SQLAlchemy's cursor events. Each size is measured 7 times; on a shared machine
the fastest round is the cleanest estimate of the work itself (the slower ones measure the neighbours),
so the headline ratio compares the fastest rounds, and the ratio of the medians is printed beside it.

    .venv/bin/python bench/sync_db_cost.py [--database postgresql://postgres@127.0.0.1:5432/tatenpo_h5_bench]
                                           [--small 10000] [--large 1000000] [--due 1000]

The database is created if missing and emptied on every run: give it one of its own.
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
from sqlalchemy import event, select, text  # noqa: E402

from tatenpo import create_app  # noqa: E402
from tatenpo.malls.base import ItemResult  # noqa: E402
from tatenpo.models import Listing, Store, SupportApplication  # noqa: E402
from tatenpo.platform.extensions import db  # noqa: E402
from tatenpo.stock import inventory  # noqa: E402
from tatenpo.sync import push, queueing  # noqa: E402


class AcceptEverything:
    """A connector that answers ✓ for every item at once: keeps the network out of a database measure."""

    mall = "rakuten"
    max_batch = 400
    can_read = True

    def push(self, items):
        return [ItemResult(key=item.key, ok=True) for item in items]


class DbClock:
    """Sums the time spent in the driver's execute calls, and counts the statements."""

    def __init__(self, engine) -> None:
        self.seconds = 0.0
        self.statements = 0
        self.on = False
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench.started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.seconds += time.perf_counter() - conn.info.pop("bench.started", time.perf_counter())
            self.statements += 1


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def build_catalog(size: int) -> int:
    """`size` products and as many listings on one 使用中 store, bulk-loaded by the database itself."""
    db.drop_all()
    db.create_all()
    store = Store(mall="rakuten", name="ベンチ店", auto_sync=True, settings={})
    db.session.add(store)
    db.session.add(SupportApplication(company="ベンチ", contact_name="ベンチ", malls=["rakuten"],
                                      application_type="自動受注メール取込・自動在庫同期を開始する", status="completed"))
    db.session.commit()
    db.session.execute(text(
        "INSERT INTO products (code, name, on_hand, allocated, stock_managed, version, search_text, created_at, updated_at) "
        "SELECT 'P' || lpad(g::text, 8, '0'), '商品', 10, 0, true, 0, '', now(), now() FROM generate_series(1, :n) g"
    ), {"n": size})
    db.session.execute(text(
        "INSERT INTO listings (store_id, product_id, item_code, variant_code, code, title, attributes, sync_enabled, "
        "drifted, search_text, created_at, updated_at) "
        "SELECT :store, id, 'item-' || id, 'normal-inventory', code, '', '{}', true, false, '', now(), now() FROM products"
    ), {"store": store.id})
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return store.id


def schedule_due(size: int, due: int, round_no: int) -> None:
    """Make `due` listings, spread over the whole catalog, due (as stock edits do)."""
    step = max(1, size // due)
    listings = db.session.scalars(
        select(Listing).where(Listing.id % step == round_no % step).order_by(Listing.id).limit(due)
    ).all()
    for listing in listings:
        listing.product.on_hand += 1
    inventory.schedule(listings)
    db.session.commit()
    db.session.expunge_all()


def measure(app, size: int, due: int, rounds: int = 7) -> tuple[float, float, int]:
    with app.app_context():
        started = time.perf_counter()
        store_id = build_catalog(size)
        print(f"  catalog of {size:,} listings built in {time.perf_counter() - started:.1f} s", flush=True)
        clock = DbClock(db.engine)
        times, statements = [], []
        for round_no in range(rounds):
            schedule_due(size, due, round_no)
            clock.seconds, clock.statements, clock.on = 0.0, 0, True
            queueing.stores_due_for_push()
            outcome = push.push_store(store_id, "schedule", connector=AcceptEverything())
            clock.on = False
            assert outcome.run.succeeded == due, outcome.run.succeeded
            times.append(clock.seconds)
            statements.append(clock.statements)
            print(f"  round {round_no + 1}: DB time {clock.seconds * 1000:.0f} ms in {clock.statements} statements",
                  flush=True)
        db.session.remove()
        return min(times), statistics.median(times), int(statistics.median(statements))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/tatenpo_h5_bench"))
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    args = parser.parse_args()
    url = args.database.replace("postgresql://", "postgresql+psycopg://", 1)
    ensure_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "CREDENTIAL_KEY": Fernet.generate_key().decode(),
                      "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"})
    results = {}
    for size in (args.small, args.large):
        print(f"{size:,} listings, {args.due:,} due:", flush=True)
        results[size] = measure(app, size, args.due)
    small, small_median, small_statements = results[args.small]
    large, large_median, large_statements = results[args.large]
    ratio = large / small
    print()
    print(f"push cycle DB time, {args.due:,} due entries (fastest of 7 rounds; median in brackets):")
    print(f"  {args.small:,} listings: {small * 1000:.0f} ms ({small_median * 1000:.0f} ms), {small_statements} statements")
    print(f"  {args.large:,} listings: {large * 1000:.0f} ms ({large_median * 1000:.0f} ms), {large_statements} statements")
    print(f"ratio {args.large:,} ÷ {args.small:,} = {ratio:.2f}   (median ratio {large_median / small_median:.2f})"
          f"   target ≤ 1.5  {'OK' if ratio <= 1.5 else 'OVER'}")
    print(f"cycle DB time at {args.large:,} listings = {large:.3f} s (median {large_median:.3f} s)"
          f"   target < 1 s  {'OK' if large_median < 1 else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
