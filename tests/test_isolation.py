"""One slow mall never stalls the other stores, and a killed push is taken back at once — with real processes
started the way `make run` starts them (redis_conn.worker_queues), the sandbox malls and the test's database.

The processes come from tests/test_reliability.py (Processes): each reads the test's settings from an
instance folder of its own.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tatenpo.models import ImportJob, SyncRun
from tatenpo.platform import tasks
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import IMPORT_WORKER_QUEUES, worker_queues
from tatenpo.stock import inventory
from tatenpo.sync import push

from .test_reliability import PYTHON, open_entries, processes, sync_state, wait_for  # noqa: F401 (fixture)
from .test_sync_engine import Shop

pytestmark = pytest.mark.slow


def start_workers(group, queue_sets) -> None:
    for n, queues in enumerate(queue_sets, 1):
        group.start(f"worker-{n}", [PYTHON, "worker.py", "--queues", ",".join(queues)])
    group.wait_for_workers(len(queue_sets))


def runs_of(app, store_id: int) -> list[tuple[str, str | None]]:
    with app.app_context():
        rows = db.session.execute(select(SyncRun.status, SyncRun.message).where(SyncRun.store_id == store_id)
                                  .order_by(SyncRun.id)).all()
        db.session.remove()
        return [tuple(row) for row in rows]


def test_a_hanging_mall_never_holds_up_another_stores_immediate_push(app, make, sandbox, processes):
    settings = dict(SYNC_COALESCE_SECONDS=0.2, MALL_TIMEOUT_SECONDS=40, MALL_RETRIES=0)
    app.config.update(settings)
    rakuten = Shop(app, make, sandbox, mall="rakuten", items=2, immediate_sync=True)
    yahoo = Shop(app, make, sandbox, mall="yahoo", items=1, immediate_sync=True)
    group = processes(**settings)
    # Two workers for the sync queue: the fewest where a second push of the hanging store, queued ahead of
    # Yahoo's, would hold the only other worker if a waiting push kept its worker.
    start_workers(group, worker_queues(2))
    logs = lambda: "".join(group.log(f"worker-{n}") for n in (1, 2, 3)) + sync_state(app)  # noqa: E731

    def edit_reaches_yahoo(quantity: int) -> float:
        started = time.monotonic()
        yahoo.set_stock(0, quantity)
        wait_for(lambda: yahoo.mall_stock(0) == quantity, 120, f"{quantity} at the Yahoo sandbox", logs=logs)
        return time.monotonic() - started

    normal = edit_reaches_yahoo(11)

    rakuten.faults(timeout=True, hang_seconds=25)  # every 楽天 call now takes 25 s
    rakuten.set_stock(0, 5)
    wait_for(lambda: ("running", None) in runs_of(app, rakuten.store.id), 60, "the 楽天 push to start", logs=logs)
    rakuten.set_stock(1, 6)  # a second push of the same store, queued ahead of Yahoo's
    hanging = edit_reaches_yahoo(12)
    # Isolation, not a tight clock: Yahoo's edit arrived while the 楽天 push was still hanging in its first call.
    assert runs_of(app, rakuten.store.id)[0][0] == "running", runs_of(app, rakuten.store.id)
    assert hanging < normal + 15, (normal, hanging)

    # Nothing of the 楽天 store is lost: the waiting push left its work to the hanging one.
    rakuten.faults(clear=True)
    wait_for(lambda: rakuten.mall_stock(0) == 5 and rakuten.mall_stock(1) == 6 and open_entries(app) == 0, 180,
             "the 楽天 edits at the mall", logs=logs)


def test_a_push_killed_mid_way_is_taken_back_by_the_next_sweep_at_once(app, make, sandbox, processes):
    # A lease and an interval far longer than the test may wait: the entries must not wait for either.
    settings = dict(SYNC_LOCK_SECONDS=3, SYNC_LEASE_SECONDS=600, SYNC_INTERVAL_SECONDS=3600, SYNC_TICK_SECONDS=1,
                    SYNC_COALESCE_SECONDS=0.2, MALL_TIMEOUT_SECONDS=40, MALL_RETRIES=0)
    app.config.update(settings)
    shop = Shop(app, make, sandbox, mall="rakuten", items=2, immediate_sync=True)
    group = processes(**settings)
    shop.faults(timeout=True, hang_seconds=25)
    with app.app_context():
        inventory.set_stock(shop.products[0].id, 7)
        inventory.set_stock(shop.products[1].id, 8)
        db.session.commit()  # → one push, which hangs in its call to the mall
    group.worker()
    group.wait_for_workers(1)
    wait_for(lambda: ("running", None) in runs_of(app, shop.store.id), 60, "the push to start",
             logs=lambda: group.log("worker"))
    group.kill("worker")  # kill -9, mid-push: its run stays "running", its entries leased for 600 s
    shop.faults(clear=True)
    group.worker("worker-2")
    group.cron()
    # Done when the malls show the stock and the push that sent it has closed its run (it does so after its
    # last call, so the stock can arrive a moment before the run says success).
    wait_for(lambda: open_entries(app) == 0 and shop.mall_stock(0) == 7 and shop.mall_stock(1) == 8
             and runs_of(app, shop.store.id)[-1][0] != "running", 60,
             "the sweep to push what the killed push left", logs=lambda: group.log("worker-2") + group.log("cron")
             + sync_state(app))
    runs = runs_of(app, shop.store.id)
    assert runs[0] == ("failed", push.CODE_INTERRUPTED), runs
    assert runs[-1][0] == "success", runs


def _queued_import(app, rq_job_id: str) -> int:
    with app.app_context():
        job = ImportJob(kind="stock", filename="stock.csv", status="queued", rq_job_id=rq_job_id)
        db.session.add(job)
        db.session.commit()
        tasks.enqueue("tatenpo.jobs.run_stock_import", job.id, job_id=rq_job_id)
        return job.id


def test_a_waiting_import_says_why_it_waits(app, make, sandbox, processes, client, auth):
    settings = dict(SYNC_COALESCE_SECONDS=0.2, MALL_TIMEOUT_SECONDS=40, MALL_RETRIES=0)
    app.config.update(settings)
    auth.login()
    group = processes(**settings)
    first = _queued_import(app, "isolation-import-1")

    def progress(job_id: int) -> str:
        return client.get(f"/imports/{job_id}/progress").get_data(as_text=True)

    assert "取込を実行するバックグラウンド処理（キュー「imports」）が動いていません" in progress(first)

    # The worker that takes imports first, busy with a push that hangs: the import waits for that job only.
    shop = Shop(app, make, sandbox, mall="rakuten", items=1, immediate_sync=True)
    shop.faults(timeout=True, hang_seconds=25)
    with app.app_context():
        db.session.execute(ImportJob.__table__.delete())  # the first import is given up: only the push is queued
        db.session.commit()
        from tatenpo.platform.redis_conn import queue

        queue("imports").empty()
    shop.set_stock(0, 3)
    start_workers(group, [IMPORT_WORKER_QUEUES])
    wait_for(lambda: ("running", None) in runs_of(app, shop.store.id), 60, "the push to start",
             logs=lambda: group.log("worker-1"))
    second, third = _queued_import(app, "isolation-import-2"), _queued_import(app, "isolation-import-3")
    assert "別の処理を実行中です。終わり次第、取込を始めます" in progress(second)
    assert "この取込の前に 1 件の処理があります" in progress(third)
    assert ("running", None) in runs_of(app, shop.store.id)  # still the same push: the reasons were of that moment
