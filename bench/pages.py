"""How fast the 商品・在庫 page and the inline stock save are, next to a trivial Flask view.

    .venv/bin/python bench/pages.py [--products 100000] [--clients 16] [--requests 25] [--repeat 3]
                                    [--database-url postgresql://…/tatenpo_bench] [--redis-url redis://…/12]

Builds a throwaway instance (SQLite + embedded Redis, or the empty database and the Redis server given, the
way a larger shop runs) with 100,000 products, each listed on a store, starts gunicorn the way `make run`
does (2 workers × 4 threads), logs in 16 clients and lets them hammer:
  1. a trivial view of the same app (login guard, CSRF, headers and all) — the baseline;
  2. the stock page: 50 rows of the 100,000, with a search typed in half-width katakana (NFKC);
  3. the inline save (htmx POST of one product's stock: history row, sync schedule, re-rendered row).
The server time of each request is taken from gunicorn's access log (%(D)s, microseconds), so the client's
own overhead does not count. Prints p50/p95 per scenario and p95 ÷ the trivial view's p95 (target ≤ 4).
The whole measurement runs --repeat times (3) against a fresh server each, and the median of the ratios is
the result: on a shared 2-core machine one run's trivial p95 moves by a third from run to run.
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
    from sqlalchemy import insert

    from tatenpo import create_app
    from tatenpo.models import Listing, Product, Store, search_key, utcnow
    from tatenpo.platform.auth import create_user
    from tatenpo.platform.extensions import db

    app = create_app()
    with app.app_context():
        db.create_all()
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
    """Fresh statistics, as autovacuum would have them a minute after the import on PostgreSQL."""
    from sqlalchemy import text

    from tatenpo import create_app
    from tatenpo.platform.extensions import db

    with create_app().app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("ANALYZE"))


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


def hammer(sessions, make_request, per_client: int) -> None:
    errors: list[str] = []

    def client(index: int) -> None:
        session, csrf = sessions[index]
        for n in range(per_client):
            try:
                response = make_request(session, csrf, index, n)
            except requests.ConnectionError:
                # gunicorn closed an idle keep-alive connection just as it was reused; a browser retries too.
                response = make_request(session, csrf, index, n)
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.url}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")


def server_times(log: Path, wanted) -> list[float]:
    """Milliseconds per request from gunicorn's access log lines '<path> <microseconds>'."""
    times = []
    for line in log.read_text().splitlines():
        path, _, micros = line.rpartition(" ")
        if wanted(path) and micros.isdigit():
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
        ratios = []
        for run in range(1, args.repeat + 1):
            print(f"-- run {run} of {args.repeat}")
            ratios.append(report(serve_and_hammer(args, env, run), args.clients))
        if args.repeat > 1:
            page, save = (statistics.median(r[i] for r in ratios) for i in (0, 1))
            print(f"median of {args.repeat} runs: stock page p95 ÷ trivial p95 = {page:.2f}, "
                  f"inline save p95 ÷ trivial p95 = {save:.2f} (target ≤ 4)")
    finally:
        if args.database_url:
            drop_tables()
        if redis_process is not None:
            embedded_redis.stop(redis_process)
        shutil.rmtree(folder, ignore_errors=True)  # the instance, its 50 MB SQLite file and the access log
    return 0


def serve_and_hammer(args, env, run: int = 1) -> Path:
    """Start gunicorn, run the three scenarios, and return its access log."""
    port = _free_port()
    log = Path(env["TATENPO_INSTANCE"]).parent / f"access-{run}.log"
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
         "--timeout", "120", "--no-control-socket", "--access-logfile", str(log), "--access-logformat", "%(U)s %(D)s",
         "bench.pages:bench_app()"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
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
        # Warm both workers' caches (templates, catalogs) before anything is measured.
        for session, _ in sessions[:4]:
            session.get(base + "/products?q=ﾃｽﾄ")
            session.get(base + "/_bench/trivial")
        log.write_text("")

        # The scenarios take turns in short rounds, so a burst of other load on the machine falls on all three
        # alike instead of skewing one of them.
        per = max(1, args.requests // ROUNDS)
        ids = iter(random.Random(6).sample(range(1, args.products + 1), args.clients * per * ROUNDS))
        targets = [[next(ids) for _ in range(per)] for _ in range(args.clients * ROUNDS)]
        for round_no in range(ROUNDS):
            hammer(sessions, lambda s, c, i, n: s.get(base + "/_bench/trivial"), per)
            hammer(sessions, lambda s, c, i, n: s.get(base + f"/products?q=ﾃｽﾄ&page={1 + (i * per + n) % 40}"), per)
            hammer(
                sessions,
                lambda s, c, i, n, r=round_no: s.post(
                    base + f"/products/{targets[r * args.clients + i][n]}/stock", data={"on_hand": str(n + 1)},
                    headers={"HX-Request": "true", "X-CSRFToken": c}),
                per,
            )
        time.sleep(0.5)  # let the access log flush
    finally:
        server.terminate()
        server.wait(20)
    return log


def report(log: Path, clients: int) -> tuple[float, float]:
    trivial = server_times(log, lambda path: path == "/_bench/trivial")
    page_only = server_times(log, lambda path: path == "/products")
    save = server_times(log, lambda path: path.startswith("/products/") and path.endswith("/stock"))
    base_p95 = p95(trivial)
    print(f"clients: {clients}, requests per scenario: {len(trivial)} / {len(page_only)} / {len(save)}")
    print(f"trivial view     p50 {statistics.median(trivial):7.1f} ms   p95 {base_p95:7.1f} ms")
    ratios = []
    for name, values in (("stock page", page_only), ("inline save", save)):
        ratios.append(p95(values) / base_p95)
        print(f"{name:<16} p50 {statistics.median(values):7.1f} ms   p95 {p95(values):7.1f} ms   "
              f"p95 ÷ trivial p95 = {ratios[-1]:.2f} (target ≤ 4)")
    return ratios[0], ratios[1]


if __name__ == "__main__":
    sys.exit(main())
