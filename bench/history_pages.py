"""How fast 在庫同期履歴 (the page and its CSV export) is on months of history, next to a trivial Flask view.

    .venv/bin/python bench/history_pages.py --database-url postgresql://…/tatenpo_bench_1000000
                                            [--clients 16] [--requests 25] [--repeat 3]

Give it the large database bench/sync_db_cost.py --keep leaves (a million listings, 90 days of one push per
listing per day: 90,000,000 lines, 0.1 % ✗). It adds a login, starts gunicorn the way `make run` does
(2 workers × 4 threads), logs in 16 clients and lets them hammer, in interleaved rounds:
  trivial       a trivial view of the same app — the baseline;
  history       /sync: the stores, the newest 50 lines (views.sync.PAGE_LINES);
  ✗ only        /sync?result=ng: the newest 50 failures, found among the 90 days;
  one day       /sync?date=…: a day 45 days back, newest first;
  one store     /sync?store=…;
  CSV of a day's ✗  /sync/export.csv?result=ng&date=…: a day's failures (about a thousand lines).
Times are the server's (gunicorn's %(D)s) and the client's (the queue included), p95 ÷ the trivial view's
(target ≤ 4), each of --repeat runs against a fresh server, with their median. The full export (every line,
cut at status.EXPORT_ROWS) is timed once at the end on its own: it is a download of 100,000 lines, measured
in lines per second rather than against a page.

Measured (PostgreSQL, 2 shared cores, other benches running; server p95 ÷ trivial p95, median of 3 runs, the
runs' spread in brackets, client side after the slash):
                    20,000 listings × 90 days (1.8 M lines)   1,000,000 listings × 90 days (90 M lines)
  history           2.84 [2.40–3.37] / 2.56                   2.52 [2.33–2.61] / 2.59
  ✗ only            3.00 [2.33–3.42] / 2.73                   2.80 [2.75–3.09] / 3.10
  one day           2.93 [2.28–3.06] / 2.65                   2.85 [2.70–2.94] / 2.95
  one store         2.97 [2.51–2.97] / 2.72                   2.64 [2.50–2.69] / 2.79
  CSV of a day's ✗  1.98 [1.78–2.16] / 1.79                   3.52 [3.38–3.74] / 4.04
Before this work: 20,000: 5.30 / 5.33 / 4.29 / 4.86, CSV 2.34; 1,000,000 (measured earlier): 7.4 / 7.9 / 6.5
/ 7.3, CSV 14.9. The full export: about 95,000 lines/s at a million listings.

Where a page's time goes: its SQL runs in 1–4 ms whatever the history's size; the rest is round trips and
drawing. A page is four statements besides the login's — the stores with their states, the page's lines
(attempts and store-level ✗ in one UNION, each read down its index), in_flight, and the application check
when a ✗ is shown — each built once per shape of filters (sync.status); its fifty lines are one loop with
hand escaping (templates/sync/_table.html); the base layout alone is about 2× the trivial view. A day's ✗ at a
million listings is a thousand lines, each at another second: the CSV's time is per line (the stamp, once
per minute; the csv writer) and one index range read without a join (status._EXPORT_COLUMNS).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

from bench.pages import PASSWORD, ROUNDS, _free_port, hammer, login, p95, print_medians, server_times  # noqa: E402

SCENARIOS = ("trivial", "history", "✗ only", "one day", "one store", "CSV of a day's ✗")
MARK = {name: f"s{i}" for i, name in enumerate(SCENARIOS)}


def prepare() -> tuple[int, str]:
    """A login for the bench, and the store and the day to filter on."""
    from sqlalchemy import select

    from tatenpo import create_app
    from tatenpo.models import Store, User, utcnow
    from tatenpo.platform.auth import create_user
    from tatenpo.platform.extensions import db

    with create_app().app_context():
        if not db.session.scalar(select(User.id).where(User.email == "bench@example.jp")):
            create_user("bench@example.jp", PASSWORD)
            db.session.commit()
        store_id = db.session.scalar(select(Store.id).order_by(Store.id))
        day = (utcnow() - timedelta(days=45)).date().isoformat()
    return store_id, day


def address(name: str, store_id: int, day: str) -> str:
    mark = "b=" + MARK[name]
    return {
        "trivial": f"/_bench/trivial?{mark}",
        "history": f"/sync?{mark}",
        "✗ only": f"/sync?result=ng&{mark}",
        "one day": f"/sync?date={day}&{mark}",
        "one store": f"/sync?store={store_id}&{mark}",
        "CSV of a day's ✗": f"/sync/export.csv?result=ng&date={day}&{mark}",
    }[name]


def serve(env, log: Path):
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
         "--timeout", "300", "--no-control-socket", "--log-level", "warning", "--access-logfile", str(log),
         "--access-logformat", "%(U)s?%(q)s %(D)s", "bench.pages:bench_app()"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(base + "/login", timeout=10)
            return server, base
        except requests.RequestException:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)


def one_run(args, env, run: int, store_id: int, day: str) -> dict[str, tuple[float, float]]:
    log = Path(env["TATENPO_INSTANCE"]).parent / f"access-{run}.log"
    server, base = serve(env, log)
    client_times: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    try:
        sessions = [login(base) for _ in range(args.clients)]
        for session, _ in sessions[:4]:
            for name in SCENARIOS:
                session.get(base + address(name, store_id, day))
        log.write_text("")
        per = max(1, args.requests // ROUNDS)
        for _round in range(ROUNDS):
            for name in SCENARIOS:
                hammer(sessions, lambda s, c, i, n, name=name: s.get(base + address(name, store_id, day)), per,
                       client_times[name])
        time.sleep(0.5)
        # The whole export, once, on its own.
        started = time.perf_counter()
        body = sessions[0][0].get(base + "/sync/export.csv").content
        export = (time.perf_counter() - started, body.count(b"\r\n") - 1)
    finally:
        server.terminate()
        server.wait(20)
    server_ms = {name: server_times(log, MARK[name]) for name in SCENARIOS}
    base_server, base_client = p95(server_ms["trivial"]), p95(client_times["trivial"])
    print(f"{'':18} {'server p50':>10} {'p95':>8} {'÷ trivial':>9}   {'client p50':>10} {'p95':>8} {'÷ trivial':>9}")
    ratios = {}
    for name in SCENARIOS:
        s_values, c_values = server_ms[name], client_times[name]
        ratios[name] = (p95(s_values) / base_server, p95(c_values) / base_client)
        print(f"{name:<18} {statistics.median(s_values):8.1f}ms {p95(s_values):6.1f}ms {ratios[name][0]:9.2f}   "
              f"{statistics.median(c_values):8.1f}ms {p95(c_values):6.1f}ms {ratios[name][1]:9.2f}")
    print(f"full CSV export: {export[1]:,} lines in {export[0]:.1f} s ({export[1] / export[0]:,.0f} lines/s)")
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tatenpo-bench-history-"))
    url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    env = dict(os.environ, TATENPO_INSTANCE=str(folder / "instance"), DATABASE_URL=url, LOG_LEVEL="WARNING")
    from tatenpo.platform import embedded_redis

    redis_process = embedded_redis.start(folder / "redis", folder / "redis.sock", persist=False)
    env["REDIS_URL"] = "unix://" + str(folder / "redis.sock")
    os.environ.update(env)
    try:
        store_id, day = prepare()
        runs = []
        for run in range(1, args.repeat + 1):
            print(f"-- run {run} of {args.repeat}", flush=True)
            runs.append(one_run(args, env, run, store_id, day))
        print_medians(runs, SCENARIOS[1:])
    finally:
        embedded_redis.stop(redis_process)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
