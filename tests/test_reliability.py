"""Nothing lost, nothing stale — with real processes: `python worker.py`, `rq cron tatenpo.schedule`, the
sandbox malls, a real Redis (one this test starts and restarts itself where Redis goes away) and the
test's own database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set).

The processes read the test's settings from an instance folder of their own (instance/config.py).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tatenpo.models import Product, StockHistory, SyncAttempt, SyncEntry, SyncRun, utcnow
from tatenpo.platform import embedded_redis
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.sync import queueing

from .test_sync_engine import Shop

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RQ = str(Path(sys.executable).parent / "rq")

pytestmark = pytest.mark.slow


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Processes:
    """Tatenpo's background processes for one test, sharing the test app's database, Redis and keys."""

    def __init__(self, app, folder: Path, **settings) -> None:
        self.app = app
        self.instance = folder / "instance"
        self.instance.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen] = {}
        self.configure(**settings)

    def configure(self, **settings) -> None:
        config = {
            "SQLALCHEMY_DATABASE_URI": self.app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": self.app.config["REDIS_URL"],
            "SECRET_KEY": self.app.config["SECRET_KEY"],
            "CREDENTIAL_KEY": self.app.config["CREDENTIAL_KEY"],
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        text = "".join(f"{key} = {value!r}\n" for key, value in config.items())
        (self.instance / "config.py").write_text(text)

    def env(self) -> dict:
        env = dict(os.environ, TATENPO_INSTANCE=str(self.instance), PYTHONPATH=str(ROOT))
        env.pop("DATABASE_URL", None)
        return env

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.instance / f"{name}.log", "ab")
        process = subprocess.Popen(args, cwd=ROOT, env=self.env(), stdout=log, stderr=log, start_new_session=True)
        process.args_for_restart = args
        self.running[name] = process
        return process

    def supervise(self) -> list[str]:
        """What a process supervisor (systemd, the launcher) does: start again whatever exited."""
        restarted = []
        for name, process in list(self.running.items()):
            if process.poll() is not None:
                self.kill(name)
                self.start(name, process.args_for_restart)
                restarted.append(name)
        return restarted

    def worker(self, name: str = "worker") -> subprocess.Popen:
        return self.start(name, [PYTHON, "worker.py"])

    def wait_for_workers(self, count: int, seconds: float = 60) -> None:
        """Until `count` workers have registered with Redis: a worker's imports take seconds on a busy
        machine, and work enqueued before then only waits (it is not what a test means to prove)."""
        from rq import Worker

        from tatenpo.platform.redis_conn import redis

        with self.app.app_context():
            connection = redis()
            wait_for(lambda: Worker.count(connection=connection) >= count, seconds, f"{count} workers to start",
                     logs=lambda: "".join(self.log(name) for name in self.running))

    def cron(self) -> subprocess.Popen:
        return self.start("cron", [RQ, "cron", "tatenpo.schedule", "--url", self.app.config["REDIS_URL"], "--path", str(ROOT)])

    def kill(self, name: str) -> None:
        """kill -9 of the process and everything it forked. RQ puts a job's work horse in a process group
        of its own, so the children are found through /proc rather than by group."""
        process = self.running.pop(name)
        for pid in [process.pid, *descendants(process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.kill(name)

    def log(self, name: str) -> str:
        path = self.instance / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.fixture
def processes(app, tmp_path):
    running = []

    def start(**settings) -> Processes:
        group = Processes(app, tmp_path / f"p{len(running)}", **settings)
        running.append(group)
        return group

    yield start
    for group in running:
        group.stop_all()


def sync_state(app) -> str:
    """What the schedule, the runs and the sync queue hold (for a failure message)."""
    from rq import Queue
    from rq.registry import FailedJobRegistry

    from tatenpo.platform.redis_conn import redis

    with app.app_context():
        entries = db.session.execute(
            select(SyncEntry.due_at, SyncEntry.lease_until, SyncEntry.attempts, SyncEntry.last_error).limit(3)).all()
        runs = db.session.execute(select(SyncRun.trigger, SyncRun.status, SyncRun.total, SyncRun.message)).all()
        queue = Queue("sync", connection=redis())
        failed = FailedJobRegistry(queue=queue)
        failures = [queue.fetch_job(i).exc_info[-600:] for i in failed.get_job_ids()[:2]]
        return f"entries {entries}\nruns {runs}\nqueued {queue.job_ids}\nfailed {failures}"


def wait_for(condition, seconds: float, what: str, interval: float = 0.1, logs=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    detail = "" if logs is None else "\n" + logs()
    raise AssertionError(f"timed out after {seconds} s waiting for {what}{detail}")


def open_entries(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(SyncEntry))
        db.session.remove()
        return count


class StockWatch:
    """Samples the mall's stock in the background and remembers every value each item showed, in order."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.seen: dict[tuple, list[int]] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for key, quantity in self.shop.sandbox.stock(self.shop.remote["id"]).items():
            history = self.seen.setdefault(key, [])
            if not history or history[-1] != quantity:
                history.append(quantity)

    def _run(self) -> None:
        while not self.stopping.is_set():
            self._sample()
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        # The last change may land between two samples: what the mall shows at the end is seen too.
        self._sample()


def test_a_worker_killed_mid_push_loses_nothing_and_no_older_value_wins(app, make, sandbox, processes):
    # ~870 SKUs: three Rakuten batches of ≤400, and a slow mall (each call hangs 2 s), so the push takes a while.
    shop = Shop(app, make, sandbox, items=700, immediate_sync=True, sync_interval_seconds=10)
    settings = dict(SYNC_LEASE_SECONDS=4, SYNC_COALESCE_SECONDS=0.2, SYNC_TICK_SECONDS=1)
    app.config.update(settings)
    group = processes(**settings)
    shop.faults(timeout=True, hang_seconds=2)
    with app.app_context():
        for product in shop.products:
            inventory.set_stock(product.id, 40)
        db.session.commit()  # → a push is queued (即時同期)
    group.worker()
    group.cron()
    keys = [(i["code"], i["variant"]) for i in shop.items]
    # Every tenth product changes again while the push is under way: some were already sent as 40.
    changed = set(range(0, len(keys), 10))
    wait_for(lambda: list(sandbox.stock(shop.remote["id"]).values()).count(40) >= 300, 120,
             "the first batch", logs=lambda: group.log("worker"))
    with StockWatch(shop) as watch:
        with app.app_context():
            for index in sorted(changed):
                inventory.set_stock(shop.products[index].id, 77)  # never a starting quantity (0–30)
            db.session.commit()  # → another push is queued behind the running one
        group.kill("worker")  # kill -9, in the middle of the push
        with app.app_context():
            assert db.session.scalar(select(SyncRun.status)) == "running"
            db.session.remove()
        shop.faults(clear=True)
        group.worker("worker-2")
        wait_for(lambda: open_entries(app) == 0, 90, "every entry to be pushed",
                 logs=lambda: group.log("worker-2") + sync_state(app))
    final = sandbox.stock(shop.remote["id"])
    assert [final[keys[i]] for i in range(len(keys))] == [77 if i in changed else 40 for i in range(len(keys))]
    for index in changed:
        history = watch.seen[keys[index]]
        # Once the newer value is at the mall, the older one never comes back.
        assert 77 in history and 40 not in history[history.index(77):], (keys[index], history)
    with app.app_context():
        statuses = [r.status for r in db.session.scalars(select(SyncRun).order_by(SyncRun.id))]
    assert statuses[0] == "failed"  # the killed push, closed as interrupted by the next one
    assert "success" in statuses[1:]


def test_redis_stopped_and_restarted_between_edits_loses_nothing(app, make, sandbox, processes, tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="h5-redis-"))
    socket_path = folder / "redis.sock"
    server = embedded_redis.start(folder, socket_path, persist=False)
    url = "unix://" + str(socket_path)
    app.config.update(REDIS_URL=url, SYNC_COALESCE_SECONDS=0.2, SYNC_INTERVAL_SECONDS=10)
    try:
        shop = Shop(app, make, sandbox, items=2, immediate_sync=True, sync_interval_seconds=10)
        group = processes(REDIS_URL=url, SYNC_COALESCE_SECONDS=0.2, SYNC_INTERVAL_SECONDS=10, SYNC_TICK_SECONDS=1)
        group.worker()
        group.cron()
        shop.set_stock(0, 15)
        wait_for(lambda: shop.mall_stock(0) == 15, 30, "the first edit at the mall", logs=lambda: group.log("worker"))

        embedded_redis.stop(server)
        shop.set_stock(0, 3)  # committed while Redis is away: the 即時同期 push cannot even be queued
        shop.set_stock(1, 9)
        assert open_entries(app) == 2

        time.sleep(1)  # the processes notice the outage
        server = embedded_redis.start(folder, socket_path, persist=False)  # empty: every queued job is gone

        def delivered():
            group.supervise()  # a process that died with its connection is started again
            return shop.mall_stock(0) == 3 and shop.mall_stock(1) == 9

        wait_for(delivered, 60, "the edits made while Redis was down",
                 logs=lambda: group.log("worker")[-800:] + group.log("cron")[-800:] + sync_state(app))
        wait_for(lambda: open_entries(app) == 0, 10, "the schedule to empty")
    finally:
        embedded_redis.stop(server)


EDITOR = r"""
import random, sys, time
from tatenpo.platform.tasks import application
from tatenpo.stock import inventory
from tatenpo.platform.extensions import db

app = application()
product_id, edits, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with app.app_context():
    for n in range(edits):
        time.sleep(rng.uniform(0.005, 0.025))  # a shop's edits and orders arrive over seconds, not in one burst
        if rng.random() < 0.5:
            inventory.set_stock(product_id, rng.randint(0, 60))
        else:
            try:
                inventory.adjust_stock(product_id, rng.choice([-3, -2, -1, 1, 2, 3]))
            except inventory.StockError:
                db.session.rollback()
                continue
        db.session.commit()
print("done")
"""


def test_two_processes_editing_one_product_500_times_while_pushes_run_end_at_the_right_mall_stock(
        app, make, sandbox, processes, tmp_path):
    shop = Shop(app, make, sandbox, mall="yahoo", items=1, immediate_sync=True, safety_stock=2)
    with app.app_context():
        product = db.session.get(Product, shop.products[0].id)
        product.allocated = 3
        db.session.commit()
    group = processes(SYNC_COALESCE_SECONDS=0.1)
    app.config["SYNC_COALESCE_SECONDS"] = 0.1
    group.worker("worker-a")
    group.worker("worker-b")
    group.wait_for_workers(2)
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    editors = [
        subprocess.Popen([PYTHON, str(script), str(shop.products[0].id), "250", str(seed)], cwd=ROOT,
                         env=group.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for seed in (1, 2)
    ]
    for editor in editors:
        out, err = editor.communicate(timeout=240)
        assert editor.returncode == 0 and b"done" in out, err.decode()[-2000:]
    edits_done = utcnow()
    with app.app_context():
        queueing.request_push(shop.store.id, "manual")  # whatever the last commits left due
    wait_for(lambda: open_entries(app) == 0, 60, "the schedule to empty",
             logs=lambda: group.log("worker-a") + group.log("worker-b"))
    with app.app_context():
        product = db.session.get(Product, shop.products[0].id)
        expected = max(0, product.on_hand - product.allocated - 2)
        history = db.session.scalar(select(func.count()).select_from(StockHistory))
        # One run may push many times: it takes up what becomes due while it runs. So count the pushes.
        pushes_meanwhile = db.session.scalar(
            select(func.count()).select_from(SyncAttempt).where(SyncAttempt.created_at < edits_done))
    assert history >= 400  # the edits really happened (a few −N bounced off zero)
    assert pushes_meanwhile >= 2, pushes_meanwhile  # and pushes ran while they did
    assert shop.mall_stock(0) == expected


def test_the_top_page_says_so_when_the_scheduler_stops(app, processes, client, auth):
    group = processes(SYNC_INTERVAL_SECONDS=2, SYNC_TICK_SECONDS=1)
    app.config["SYNC_INTERVAL_SECONDS"] = 2
    auth.login()
    group.worker()
    group.cron()
    alert = "自動同期が停止しています"
    wait_for(lambda: alert not in client.get("/").get_data(as_text=True), 30, "the scheduler's first round",
             logs=lambda: group.log("cron") + group.log("worker"))
    group.kill("cron")
    wait_for(lambda: alert in client.get("/").get_data(as_text=True), 15, "the stopped-scheduler alert")
    group.cron()
    wait_for(lambda: alert not in client.get("/").get_data(as_text=True), 30, "the alert to clear once it runs again")
