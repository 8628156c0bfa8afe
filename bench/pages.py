"""How fast the 商品・在庫 page and the inline stock save are, next to a trivial Flask view.

    .venv/bin/python bench/pages.py [--products 100000] [--clients 16] [--requests 25] [--repeat 3]
                                    [--database-url postgresql://…/tatenpo_bench] [--redis-url redis://…/12]

Builds a throwaway instance (SQLite + embedded Redis, or the empty database and the Redis server given, the
way a larger shop runs) with the schema the migrations build (FTS5 on SQLite, pg_trgm on PostgreSQL),
100,000 products each listed on a store, and three pushes of history per listing (the newest ✗ for 0.2 % of
them). Starts gunicorn the way `make run` does (2 workers × 4 threads), logs in 16 clients and lets them
hammer, in interleaved rounds:
  trivial      a trivial view of the same app (login guard, CSRF, headers and all) — the baseline;
  no search    the stock page, 50 rows of the 100,000, pages 1–40;
  common term  a search typed in half-width katakana (ﾃｽﾄ: every fifth product), pages 1–40;
  rare code    one product's code (BENCH-0xxxxx, a different one each time): one hit;
  no hit       a word found nowhere (a different one each time);
  ✗ filter     only the products with a listing whose newest push failed;
  inline save  the htmx POST of one product's stock (history row, sync schedule, re-rendered row).
Two times per request: the server's, from gunicorn's access log (%(D)s, microseconds), and the client's
(from sending the request to reading the whole answer: the time in gunicorn's queue included). Prints
p50/p95 per scenario and p95 ÷ the trivial view's p95 (target ≤ 4) for both. The whole measurement runs
--repeat times (3) against a fresh server each, and the median of the ratios is the result: on a shared
2-core machine one run's trivial p95 moves by a third from run to run. On SQLite the server runs with
SQLITE_WRITER_LOCK on, as `make run` does.

Measured on 2026-12-01 (100,000 products, 16 clients), server p95 ÷ trivial (client) for each of three
runs of --repeat 3 (each already the median of 3), on a quiet 2-core machine whose trivial p95 was only
6–8 ms, so a few milliseconds of scheduling move a ratio by 1. Late that day, after this round's changes:
                 no search         common term       rare code         no hit            ✗ filter          inline save
  SQLite         2.96 2.87 2.74    3.34 3.48 3.22    2.37 3.05 2.41    2.08 2.30 2.08    3.47 3.47 3.61    2.81 3.46 3.07
    (client)     (2.87 2.90 2.57)  (3.22 3.26 2.83)  (2.55 2.57 2.36)  (1.94 2.16 1.96)  (3.60 3.17 3.19)  (3.05 3.24 3.09)
  PostgreSQL     2.79 2.78         3.54 3.25         3.36 3.21         2.41 2.22         3.86 3.61         3.45 3.34
    (client)     (2.63 2.90)       (3.54 3.33)       (3.13 3.15)       (2.36 2.35)       (3.68 3.60)       (3.37 3.47)
  (SQLite once more on the last commit: 2.79 3.17 2.57 2.14 3.14 3.27, client 2.17 2.72 2.17 1.79 2.85 3.09)
  that morning, before them:
  SQLite         3.96 3.26 4.23    5.23 4.61 5.26    3.31 3.32 3.84    2.64 2.72 3.42    4.15 3.83 4.61    4.33 3.78 4.48
    (client)     (3.32 3.41 2.57)  (3.58 3.51 3.06)  (2.64 2.55 2.27)  (2.13 2.05 1.98)  (3.51 3.42 2.95)  (3.24 3.32 3.32)
  PostgreSQL     3.13 (2.72)       3.86 (3.60)       4.03 (3.65)       2.78 (2.12)       3.99 (3.58)       3.89 (3.19)
What changed that day: on SQLite a page reads its fifty ids first and then their rows (stock/table.py), and the
search text is indexed with the code (ix_products_code_search_text, stock/search.py): the rows a common word
tests on the way to page 40 are read from that index alone, and the table and the 販売可能数 only for the page's
rows — the common term's deepest pages cost 0.9 ms less, every page a little less. The state filters now list
exactly the listings whose badge shows the state (a failure being retried is 同期待ち, not ✗; an old failure of
a listing no longer pushed is not ✗): the ✗ filter checks its few marked listings against the schedule and the
rules, about 1 ms more of PostgreSQL's time (3.07 before, 3.6–3.9 after). A first form of it gathered the
whole schedule for each query: as the inline saves filled the schedule, PostgreSQL's ✗ rose to 7.6 and 10.6 in
two of three runs; each marked listing now looks itself up (EXISTS). PostgreSQL's connections run without JIT
(a short query whose estimate passed jit_above_cost spent 300–400 ms compiling).
Where a request's CPU goes (one thread, in-process, 100,000 products on SQLite; trivial ≈ 0.4 ms): no search
≈ 2.3 ms — the fixed part of any page of the table (login and session, base.html, the filters, the store
list), 50 rows drawn (views.stock.product_rows) and read (one statement); the common term ≈ 0.4 ms more on
average (its count comes from the FTS index: stock.search.planned), page 40 ≈ 0.7 ms more; a rare code ≈ 2.2 ms.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
PASSWORD = "bench password 1"
ROUNDS = 5


def bench_app():
    """The production app plus one trivial view, for gunicorn (`bench.pages:bench_app()`)."""
    from tatenpo import create_app

    app = create_app()

    @app.route("/_bench/trivial")
    def trivial():
        return "ok"

    return app


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def populate(products: int) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from tatenpo import create_app
    from tatenpo.models import Listing, Product, Store, SyncRun, search_key, utcnow
    from tatenpo.platform.auth import create_user
    from tatenpo.platform.extensions import db

    app = create_app()
    with app.app_context():
        upgrade()  # the schema as the migrations build it, indexes and all
        create_user("bench@example.jp", PASSWORD)
        store = Store(mall="rakuten", name="ベンチ楽天店", auto_sync=True, settings={})
        db.session.add(store)
        db.session.commit()
        now = utcnow()
        names = ["テスト商品", "りんごジュース", "Ｔシャツ", "マグカップ", "タオル"]
        for start in range(0, products, 5000):
            rows = []
            for i in range(start, min(products, start + 5000)):
                code = f"BENCH-{i:06d}"
                name = f"{names[i % len(names)]} {i}"
                rows.append({"code": code, "name": name, "on_hand": i % 50, "allocated": 0, "stock_managed": True,
                             "version": 0, "search_text": search_key(code, name), "created_at": now, "updated_at": now})
            db.session.execute(insert(Product), rows)
        db.session.commit()
        ids = db.session.execute(db.select(Product.id, Product.code, Product.name)).all()
        for start in range(0, len(ids), 5000):
            rows = [
                {"store_id": store.id, "product_id": pid, "item_code": code.lower(), "variant_code": "", "code": code,
                 "title": name, "attributes": {}, "sync_enabled": True, "drifted": False,
                 "search_text": search_key(code, code.lower(), name), "created_at": now, "updated_at": now}
                for pid, code, name in ids[start : start + 5000]
            ]
            db.session.execute(insert(Listing), rows)
        db.session.commit()
        # Three daily pushes of every listing, by the database itself; every 500th listing failed on its
        # last push (the ✗ filter's rows), every 100th failed once before and was fixed since.
        for day in (3, 2, 1):
            run = SyncRun(store_id=store.id, trigger="schedule", status="success", total=len(ids),
                          started_at=now - timedelta(days=day), finished_at=now - timedelta(days=day))
            db.session.add(run)
            db.session.flush()
            failing = "(id % 500 = 0)" if day == 1 else "(id % 100 = 0)" if day == 2 else "(1 = 0)"
            db.session.execute(text(
                "INSERT INTO sync_attempts (run_id, store_id, listing_id, listing_code, product_code, quantity, ok, "
                f"will_retry, message, created_at) SELECT :run, store_id, id, code, code, 5, NOT {failing}, false, "
                f"CASE WHEN {failing} THEN '在庫数が不正です' END, :at FROM listings"
            ), {"run": run.id, "at": now - timedelta(days=day)})
        # The ✗ mark the push keeps with its history lines (sync.push.mark_newest): the last push's failures.
        db.session.execute(text("UPDATE listings SET push_failed = (id % 500 = 0)"))
        db.session.commit()


def refuse_a_database_in_use() -> None:
    """The bench fills the database it is given and drops its tables afterwards: only an empty one will do."""
    from sqlalchemy import inspect

    from tatenpo import create_app
    from tatenpo.platform.extensions import db

    with create_app().app_context():
        tables = inspect(db.engine).get_table_names()
    if tables:
        raise SystemExit(f"the database has tables already ({', '.join(sorted(tables)[:3])}, …): give an empty one")


def drop_tables() -> None:
    from sqlalchemy import text

    from tatenpo import create_app
    from tatenpo.platform.extensions import db

    with create_app().app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def analyze() -> None:
    """Fresh statistics and visibility map, as autovacuum would have them a minute after the import on
    PostgreSQL (without the vacuum, index-only scans read the table too and the planner prices them so)."""
    from sqlalchemy import text

    from tatenpo import create_app
    from tatenpo.platform.extensions import db

    with create_app().app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))


def login(base: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(base + "/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    response = session.post(base + "/login", data={"email": "bench@example.jp", "password": PASSWORD,
                                                   "csrf_token": token.group(1)})
    response.raise_for_status()
    products = session.get(base + "/products").text
    csrf = re.search(r'"X-CSRFToken": "([^"]+)"', products).group(1)
    return session, csrf


def hammer(sessions, make_request, per_client: int, client_times: list[float]) -> None:
    """Each client sends `per_client` requests one after the other; each one's client-side time (from
    sending to the last byte of the answer, in milliseconds) goes to `client_times`."""
    errors: list[str] = []

    def client(index: int) -> None:
        session, csrf = sessions[index]
        for n in range(per_client):
            started = time.perf_counter()
            try:
                response = make_request(session, csrf, index, n)
            except requests.ConnectionError:
                # gunicorn closed an idle keep-alive connection just as it was reused; a browser retries too.
                started = time.perf_counter()
                response = make_request(session, csrf, index, n)
            client_times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.url}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")


def server_times(log: Path, scenario: str) -> list[float]:
    """Milliseconds per request of one scenario from gunicorn's access log lines '<path>?<query> <µs>' (the
    bench marks each request's query with b=<scenario>)."""
    times = []
    for line in log.read_text().splitlines():
        address, _, micros = line.rpartition(" ")
        if f"b={scenario}" in address.partition("?")[2].split("&") and micros.isdigit():
            times.append(int(micros) / 1000)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=25, help="requests per client per scenario")
    parser.add_argument("--repeat", type=int, default=3,
                        help="independent runs (a fresh server each); the median of their ratios is the result")
    parser.add_argument("--database-url", help="an empty database to fill instead of a throwaway SQLite file "
                        "(e.g. postgresql://postgres@127.0.0.1:5432/tatenpo_bench); its tables are dropped afterwards")
    parser.add_argument("--redis-url", help="a Redis server instead of the embedded one (e.g. redis://127.0.0.1:6379/12)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tatenpo-bench-pages-"))
    env = dict(os.environ)
    env.update(
        TATENPO_INSTANCE=str(folder / "instance"),
        DATABASE_URL=args.database_url or "sqlite:///" + str(folder / "bench.db"),
        LOG_LEVEL="WARNING",
    )
    env.pop("REDIS_URL", None)
    if not args.database_url:
        # As `make run` on SQLite (platform/launcher.py): writers queue in a file lock (platform/sqlite_writers.py)
        # rather than sleep-polling in SQLite's busy handler, whose waits of up to 100 ms were the inline save's p95.
        env.setdefault("SQLITE_WRITER_LOCK", "1")
    from tatenpo.platform import embedded_redis

    redis_process = None
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        redis_process = embedded_redis.start(folder / "redis", folder / "redis.sock", persist=False)
        env["REDIS_URL"] = "unix://" + str(folder / "redis.sock")
    os.environ.update(env)
    database = "SQLite" if env["DATABASE_URL"].startswith("sqlite") else env["DATABASE_URL"].split(":", 1)[0]
    print(f"database: {database}, redis: {'embedded' if redis_process else 'server'}")

    if args.database_url:
        refuse_a_database_in_use()
    try:
        started = time.monotonic()
        populate(args.products)
        analyze()
        print(f"populated {args.products:,} products and listings in {time.monotonic() - started:.1f} s")
        runs = []
        for run in range(1, args.repeat + 1):
            print(f"-- run {run} of {args.repeat}", flush=True)
            log, client_times = serve_and_hammer(args, env, run)
            runs.append(report(log, client_times, args.clients))
        print_medians(runs, SCENARIOS[1:])
    finally:
        if args.database_url:
            drop_tables()
        if redis_process is not None:
            embedded_redis.stop(redis_process)
        shutil.rmtree(folder, ignore_errors=True)  # the instance, its 50 MB SQLite file and the access log
    return 0


def print_medians(runs: list[dict], scenarios) -> None:
    """Each scenario's p95 ÷ the trivial view's, server (client) side, for every run and their median: the
    summary bench/pages.py and bench/history_pages.py end with."""
    width = max(len(name) for name in scenarios)
    print(f"\np95 ÷ trivial p95, server (client) side, each run and the median of {len(runs)} (target ≤ 4):")
    for name in scenarios:
        each = "  ".join(f"{r[name][0]:.2f} ({r[name][1]:.2f})" for r in runs)
        server_median = statistics.median(r[name][0] for r in runs)
        client_median = statistics.median(r[name][1] for r in runs)
        verdict = "OK" if max(server_median, client_median) <= 4 else "OVER"
        print(f"  {name:<{width}} {each}   median {server_median:.2f} ({client_median:.2f})  {verdict}")


# The scenarios, in the order of their turns in each round; a request is (method, address, data) for a client
# `i` and its request `n` in the round `r`.
SCENARIOS = ("trivial", "no search", "common term", "rare code", "no hit", "✗ filter", "inline save")
MARK = {name: name.replace(" ", "-").replace("✗", "failed") for name in SCENARIOS}


def scenario_request(name: str, products: int, draw: random.Random, page_of) -> tuple[str, str, dict | None]:
    mark = "b=" + MARK[name]
    if name == "trivial":
        return "GET", f"/_bench/trivial?{mark}", None
    if name == "no search":
        return "GET", f"/products?page={page_of()}&{mark}", None
    if name == "common term":
        return "GET", f"/products?q=ﾃｽﾄ&page={page_of()}&{mark}", None
    if name == "rare code":
        return "GET", f"/products?q=BENCH-{draw.randrange(products):06d}&{mark}", None
    if name == "no hit":
        return "GET", f"/products?q=ない{draw.randrange(10**6):06d}&{mark}", None
    if name == "✗ filter":
        return "GET", f"/products?state=failed&{mark}", None
    return "POST", f"/products/{draw.randrange(1, products + 1)}/stock?{mark}", {"on_hand": str(draw.randrange(1, 50))}


def serve_and_hammer(args, env, run: int = 1) -> tuple[Path, dict[str, list[float]]]:
    """Start gunicorn, run the scenarios, and return its access log and the client-side times."""
    port = _free_port()
    log = Path(env["TATENPO_INSTANCE"]).parent / f"access-{run}.log"
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
         "--timeout", "120", "--no-control-socket", "--log-level", "warning", "--access-logfile", str(log),
         "--access-logformat", "%(U)s?%(q)s %(D)s", "bench.pages:bench_app()"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    client_times: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/login", timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("gunicorn did not start")
                time.sleep(0.2)
        sessions = [login(base) for _ in range(args.clients)]
        # Warm both workers' caches (templates, catalogs, each shape's statement) before anything is measured.
        for session, _ in sessions[:4]:
            for address in ("/products?q=ﾃｽﾄ", "/products?q=BENCH-000001", "/products?q=ないもの", "/products",
                            "/products?state=failed", "/_bench/trivial"):
                session.get(base + address)
        log.write_text("")

        # The scenarios take turns in short rounds, so a burst of other load on the machine falls on all of
        # them alike instead of skewing one.
        per = max(1, args.requests // ROUNDS)
        draws = [random.Random(run * 1000 + i) for i in range(args.clients)]
        for _round in range(ROUNDS):
            for name in SCENARIOS:
                def send(session, csrf, i, n, name=name):
                    method, address, data = scenario_request(
                        name, args.products, draws[i], lambda: 1 + draws[i].randrange(40))
                    headers = {"HX-Request": "true", "X-CSRFToken": csrf} if method == "POST" else None
                    return session.request(method, base + address, data=data, headers=headers)

                hammer(sessions, send, per, client_times[name])
        time.sleep(0.5)  # let the access log flush
    finally:
        server.terminate()
        server.wait(20)
    return log, client_times


def report(log: Path, client_times: dict[str, list[float]], clients: int) -> dict[str, tuple[float, float]]:
    """Per scenario: (server p95 ÷ trivial's, client p95 ÷ trivial's)."""
    server = {name: server_times(log, MARK[name]) for name in SCENARIOS}
    base_server, base_client = p95(server["trivial"]), p95(client_times["trivial"])
    print(f"clients: {clients}, requests per scenario: {len(server['trivial'])}")
    print(f"{'':14} {'server p50':>10} {'p95':>7} {'÷ trivial':>9}   {'client p50':>10} {'p95':>7} {'÷ trivial':>9}")
    ratios = {}
    for name in SCENARIOS:
        s_values, c_values = server[name], client_times[name]
        ratios[name] = (p95(s_values) / base_server, p95(c_values) / base_client)
        print(f"{name:<14} {statistics.median(s_values):8.1f}ms {p95(s_values):5.1f}ms {ratios[name][0]:9.2f}   "
              f"{statistics.median(c_values):8.1f}ms {p95(c_values):5.1f}ms {ratios[name][1]:9.2f}")
    return ratios


if __name__ == "__main__":
    sys.exit(main())
