"""The push, read-back and drift check against the sandbox malls over real HTTP, with a real database and Redis.

Each test makes its own sandbox store, links Tatenpo listings to the sandbox's items and changes stock the
way the shop does (inventory.set_stock + commit), then asserts what the mall shows and what 在庫同期履歴 says.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import func, select, update

from tatenpo.malls import family_of
from tatenpo.models import Listing, Product, Store, SyncAttempt, SyncEntry, SyncRun, utcnow
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.sync import push, queueing, readback
from tatenpo.sync.push import push_store


class Shop:
    """One sandbox store and its Tatenpo twin: store, products and listings linked item by item."""

    def __init__(self, app, make, sandbox, mall="rakuten", items=3, applied=True, **store_fields):
        self.app, self.sandbox, self.mall = app, sandbox, mall
        self.remote = sandbox.create_store(mall, items=items)
        self.store = make.store(mall=mall, endpoint=self.remote["endpoint"], secrets=self.remote["credentials"],
                                **store_fields)
        if applied:
            make.application(malls=(family_of(mall),))
        self.items = sandbox.items(self.remote["id"])
        # One transaction for the whole catalog (a thousand items in a second, not one commit each).
        with app.app_context():
            products = [Product(code=f"S{self.store.id}-{n:05d}", name=item["name"], on_hand=item["quantity"])
                        for n, item in enumerate(self.items)]
            db.session.add_all(products)
            db.session.flush()
            listings = [
                Listing(store_id=self.store.id, product_id=product.id, item_code=item["code"],
                        variant_code=item["variant"], code=item["sku"], title=item["name"], attributes={})
                for product, item in zip(products, self.items)
            ]
            db.session.add_all(listings)
            db.session.commit()
            for row in products + listings:
                db.session.refresh(row)
            db.session.expunge_all()
        self.products, self.listings = products, listings

    def set_stock(self, index: int, quantity: int) -> None:
        with self.app.app_context():
            inventory.set_stock(self.products[index].id, quantity)
            db.session.commit()

    def mall_stock(self, index: int) -> int:
        item = self.items[index]
        return self.sandbox.stock(self.remote["id"])[(item["code"], item["variant"])]

    def faults(self, **switches):
        return self.sandbox.faults(self.remote["id"], **switches)


# A count the sandbox never gives an item (sandbox/catalog.py draws 0–30): a reflection test whose item
# happened to start at the pushed count would find it shown at once, whichever sandbox store it got.
MALL_NEVER_SHOWS = 41


@pytest.fixture
def quick(app):
    """Connectors that give up at once (no in-call retries) and short timeouts, so fault tests stay quick."""
    app.config.update(MALL_RETRIES=0, MALL_BACKOFF_SECONDS=0.1, MALL_TIMEOUT_SECONDS=2)
    return app


def _attempts(app, store_id):
    with app.app_context():
        rows = db.session.scalars(select(SyncAttempt).where(SyncAttempt.store_id == store_id).order_by(SyncAttempt.id)).all()
        db.session.expunge_all()
        return rows


def _entries(app, store_id):
    with app.app_context():
        rows = db.session.scalars(select(SyncEntry).where(SyncEntry.store_id == store_id).order_by(SyncEntry.id)).all()
        db.session.expunge_all()
        return rows


@pytest.mark.parametrize("mall", ["rakuten", "yahoo", "shopify", "amazon"])
def test_a_push_sets_the_mall_stock_records_check_marks_and_reads_it_back(app, make, sandbox, mall):
    shop = Shop(app, make, sandbox, mall=mall, items=3)
    shop.set_stock(0, 11)
    shop.set_stock(1, 0)
    with app.app_context():
        outcome = push_store(shop.store.id, "schedule")
        run = outcome.run
        assert (run.status, run.total, run.succeeded, run.failed) == ("success", 2, 2, 0)
        assert run.duration_ms is not None
    assert shop.mall_stock(0) == 11 and shop.mall_stock(1) == 0
    assert _entries(app, shop.store.id) == []  # closed
    attempts = _attempts(app, shop.store.id)
    assert [(a.listing_code, a.quantity, a.ok) for a in attempts] == [
        (shop.listings[0].code, 11, True), (shop.listings[1].code, 0, True)]

    with app.app_context():
        result = readback.read_back(shop.store.id)
        assert result.reflected == 2
        listing = db.session.get(Listing, shop.listings[0].id)
        assert (listing.reflected, listing.mall_quantity, listing.last_pushed_quantity) == (True, 11, 11)
        store = db.session.get(Store, shop.store.id)
        assert store.consecutive_failures == 0 and store.last_success_at is not None
    assert all(a.reflected for a in _attempts(app, shop.store.id))


def test_rakuten_ftp_results_come_from_the_result_log_with_its_errors_on_the_items(app, make, sandbox):
    app.config.update(RAKUTEN_FTP_LOG_POLL_SECONDS=0.2, RAKUTEN_FTP_LOG_WAIT_SECONDS=30)
    shop = Shop(app, make, sandbox, mall="rakuten-ftp", items=2)
    ghost_product = make.product(on_hand=0)
    ghost = make.listing(shop.store, ghost_product, item_code="no-such-item", variant_code="normal-inventory")
    shop.set_stock(0, 14)
    with app.app_context():
        inventory.set_stock(ghost_product.id, 2)
        db.session.commit()
        run = push_store(shop.store.id).run
        assert (run.status, run.succeeded, run.failed) == ("partial", 1, 1)
        # The log was the check of step 8: nothing is left to read back.
        assert db.session.get(Listing, shop.listings[0].id).reflected is True
        assert readback.read_back(shop.store.id).checked == 0
    assert shop.mall_stock(0) == 14
    by_code = {a.listing_code: a for a in _attempts(app, shop.store.id)}
    assert by_code[shop.listings[0].code].reflected is True
    failed = by_code[ghost.code]
    assert (failed.ok, failed.hint) == (False, "item") and "見つかりません" in failed.message


def test_what_is_pushed_is_sellable_minus_safety_stock_capped_by_the_listing_maximum(app, make, sandbox):
    shop = Shop(app, make, sandbox, items=2, safety_stock=3)
    with app.app_context():
        db.session.execute(update(Product).where(Product.id == shop.products[0].id).values(allocated=4))
        db.session.execute(update(Listing).where(Listing.id == shop.listings[1].id).values(max_quantity=5))
        db.session.commit()
    shop.set_stock(0, 20)  # 20 − 4 allocated − 3 kept back = 13
    shop.set_stock(1, 50)  # 50 − 3 = 47, capped at 5
    with app.app_context():
        push_store(shop.store.id)
    assert shop.mall_stock(0) == 13 and shop.mall_stock(1) == 5


def test_a_change_made_during_the_push_stays_due_with_the_newer_value(app, make, sandbox):
    shop = Shop(app, make, sandbox, items=1)
    shop.set_stock(0, 10)

    class EditWhilePushing:
        """The real connector, with one stock edit committed by another session while the first call is out."""

        def __init__(self, real):
            self.real, self.max_batch, self.can_read, self.edited = real, real.max_batch, True, False

        def push(self, items):
            if not self.edited:
                self.edited = True

                def edit():
                    with app.app_context():
                        inventory.set_stock(shop.products[0].id, 4)
                        db.session.commit()

                thread = threading.Thread(target=edit)
                thread.start()
                thread.join()
            return self.real.push(items)

    with app.app_context():
        real = push.open_connector(db.session.get(Store, shop.store.id))
        run = push_store(shop.store.id, connector=EditWhilePushing(real)).run
        real.close()
        assert (run.total, run.succeeded) == (2, 2)
    # The first send (10) did not close the entry: its version had moved on, so the same run sent 4 next.
    attempts = _attempts(app, shop.store.id)
    assert [a.quantity for a in attempts] == [10, 4]
    assert attempts[1].entry_version > attempts[0].entry_version
    assert shop.mall_stock(0) == 4
    assert _entries(app, shop.store.id) == []


def test_a_push_that_lost_its_lease_sends_nothing_so_no_stale_value_wins(app, make, sandbox):
    shop = Shop(app, make, sandbox, items=1)
    shop.set_stock(0, 9)
    with app.app_context():
        stalled = push.claim(shop.store.id, "stalled-worker", 100)
        # The stalled push outlived its lease; a newer change came and another push sent it.
        db.session.execute(update(SyncEntry).values(lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    shop.set_stock(0, 2)
    with app.app_context():
        push_store(shop.store.id)
        assert shop.mall_stock(0) == 2
        shop.set_stock(0, 1)  # the entry is open again, claimed by nobody
        assert push._renew_and_load(stalled, "stalled-worker", 60) == []  # the stalled push may send nothing
    assert shop.mall_stock(0) == 2


def test_two_claimers_never_take_the_same_entry(app, make, sandbox):
    shop = Shop(app, make, sandbox, items=3)
    for i in range(3):
        shop.set_stock(i, 5 + i)
    with app.app_context():
        first = push.claim(shop.store.id, "a", 2)
        second = push.claim(shop.store.id, "b", 10)
        third = push.claim(shop.store.id, "c", 10)
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second) and third == []


def test_wrong_credentials_fail_with_the_login_check_and_count_store_failures(app, make, sandbox, quick, client, auth):
    shop = Shop(app, make, sandbox, items=2)
    shop.set_stock(0, 8)
    shop.faults(auth="wrong")
    with app.app_context():
        run = push_store(shop.store.id).run
        assert run.status == "failed"
        store = db.session.get(Store, shop.store.id)
        assert store.consecutive_failures == 1 and store.last_error
    attempt = _attempts(app, shop.store.id)[0]
    assert (attempt.ok, attempt.will_retry, attempt.hint) == (False, False, "login")
    entry = _entries(app, shop.store.id)[0]
    assert entry.due_at > utcnow() + timedelta(minutes=30)  # parked, not hammering the mall
    auth.login()
    page = client.get("/sync").get_data(as_text=True)
    assert "ECサイト設定のログインIDやパスワードに間違いが無いか" in page and "自動確認: 原因です" in page

    # Fixed on the mall's side; 今すぐ同期 pushes the parked entry at once and the failure count resets.
    shop.faults(clear=True)
    with app.app_context():
        assert push_store(shop.store.id, "manual").run.status == "success"
        assert db.session.get(Store, shop.store.id).consecutive_failures == 0
    assert shop.mall_stock(0) == 8


def test_an_expired_key_is_a_login_failure(app, make, sandbox, quick):
    shop = Shop(app, make, sandbox, items=1)
    shop.set_stock(0, 3)
    shop.faults(auth="expired")
    with app.app_context():
        run = push_store(shop.store.id).run
        assert run.status == "failed"
    attempt = _attempts(app, shop.store.id)[0]
    assert not attempt.ok and attempt.hint == "login" and not attempt.will_retry


@pytest.mark.parametrize("fault", [{"maintenance": True}, {"error_5xx": True}, {"throttle": True},
                                   {"timeout": True, "hang_seconds": 3}])
def test_transient_faults_keep_the_entry_due_with_backoff_and_show_a_retry(app, make, sandbox, quick, fault):
    shop = Shop(app, make, sandbox, items=1)
    shop.set_stock(0, 6)
    shop.faults(**fault)
    with app.app_context():
        run = push_store(shop.store.id).run
        assert (run.status, run.failed, run.retried) == ("failed", 1, 1)
    attempt = _attempts(app, shop.store.id)[0]
    assert (attempt.ok, attempt.will_retry) == (False, True) and attempt.message
    entry = _entries(app, shop.store.id)[0]
    assert utcnow() < entry.due_at < utcnow() + timedelta(minutes=31) and entry.attempts == 1
    assert entry.lease_until is None

    shop.faults(clear=True)
    with app.app_context():
        assert push_store(shop.store.id).run is None  # still in backoff: the schedule does not push it yet
        assert push_store(shop.store.id, "manual").run.status == "success"
    assert shop.mall_stock(0) == 6


def test_a_single_5xx_is_retried_inside_the_call(app, make, sandbox):
    app.config.update(MALL_RETRIES=2, MALL_BACKOFF_SECONDS=0.1)
    shop = Shop(app, make, sandbox, items=1)
    shop.set_stock(0, 12)
    shop.faults(error_5xx=1)
    with app.app_context():
        assert push_store(shop.store.id).run.status == "success"
    assert shop.mall_stock(0) == 12


def test_an_item_the_mall_does_not_have_is_accepted_then_read_back_as_not_reflected(app, make, sandbox):
    shop = Shop(app, make, sandbox, items=1)
    ghost_product = make.product(on_hand=0)
    ghost = make.listing(shop.store, ghost_product, item_code="no-such-item", variant_code="normal-inventory")
    with app.app_context():
        inventory.set_stock(ghost_product.id, 4)
        db.session.commit()
        assert push_store(shop.store.id).run.status == "success"  # Rakuten parks unknown codes without error
        readback.read_back(shop.store.id)
        listing = db.session.get(Listing, ghost.id)
        assert listing.reflected is False and listing.reflection_error and listing.reflection_deadline is None
    attempt = _attempts(app, shop.store.id)[-1]
    assert (attempt.reflected, attempt.hint) == (False, "item")


def test_delayed_reflection_is_checked_again_until_the_mall_shows_it(app, make, sandbox):
    shop = Shop(app, make, sandbox, mall="yahoo", items=1)
    shop.faults(reflection_delay=2)
    shop.set_stock(0, MALL_NEVER_SHOWS)
    with app.app_context():
        push_store(shop.store.id)
        first = readback.read_back(shop.store.id)
        assert (first.reflected, first.waiting) == (0, 1) and first.next_check is not None
        listing = db.session.get(Listing, shop.listings[0].id)
        assert listing.reflected is False and listing.reflection_deadline is not None  # 未反映, still checking
        assert readback.read_back(shop.store.id).checked == 0  # not due yet: the gap between reads grows
        import time

        time.sleep(2.2)
        second = readback.read_back(shop.store.id, force=True)
        assert second.reflected == 1
        assert db.session.get(Listing, shop.listings[0].id).reflected is True


def test_a_listing_still_not_reflected_after_the_window_is_flagged(app, make, sandbox):
    shop = Shop(app, make, sandbox, mall="yahoo", items=1)
    shop.faults(reflection_delay=30)
    shop.set_stock(0, MALL_NEVER_SHOWS)
    with app.app_context():
        push_store(shop.store.id)  # its own first read-back finds the push still inside the window
        listing = db.session.get(Listing, shop.listings[0].id)
        assert listing.reflected is None and listing.reflection_deadline is not None
        # The window has passed (set as a state, not waited for: a loaded machine must not decide the outcome).
        listing.reflection_deadline = utcnow() - timedelta(seconds=1)
        db.session.commit()
        result = readback.read_back(shop.store.id, force=True)
        assert result.not_reflected == 1
        listing = db.session.get(Listing, shop.listings[0].id)
        assert listing.reflected is False and listing.reflection_deadline is None
        assert str(MALL_NEVER_SHOWS) in listing.reflection_error


def test_drift_is_flagged_and_the_shop_can_overwrite_the_mall_or_adopt_its_value(app, make, sandbox, client, auth):
    shop = Shop(app, make, sandbox, items=2, safety_stock=1)
    shop.set_stock(0, 10)
    shop.set_stock(1, 10)
    with app.app_context():
        push_store(shop.store.id)
        readback.read_back(shop.store.id)
    edits = [{"code": shop.items[i]["code"], "variant": shop.items[i]["variant"], "quantity": 3} for i in (0, 1)]
    sandbox.set_stock(shop.remote["id"], edits)
    with app.app_context():
        result = readback.check_drift(shop.store.id)
        assert sorted(result.drifted) == sorted([shop.listings[0].id, shop.listings[1].id])
        assert db.session.get(Store, shop.store.id).last_drift_check_at is not None
        assert not readback.drift_due(db.session.get(Store, shop.store.id))

    auth.login()
    top = client.get("/").get_data(as_text=True)
    assert "モール上で直接変更された在庫" in top and shop.listings[0].code in top
    client.post(f"/sync/listings/{shop.listings[0].id}/drift", data={"choice": "overwrite"})
    client.post(f"/sync/listings/{shop.listings[1].id}/drift", data={"choice": "adopt"})
    with app.app_context():
        push_store(shop.store.id)
        assert db.session.get(Product, shop.products[1].id).on_hand == 4  # 3 on the mall + 1 kept back
        assert not db.session.scalars(select(Listing).where(Listing.drifted.is_(True))).all()
    assert shop.mall_stock(0) == 9 and shop.mall_stock(1) == 3
    again = client.post(f"/sync/listings/{shop.listings[0].id}/drift", data={"choice": "adopt"}, follow_redirects=True)
    assert "差異がなくなっています" in again.get_data(as_text=True)


def test_immediate_sync_queues_one_coalesced_push_after_the_commit(app, make, sandbox):
    app.config["SYNC_COALESCE_SECONDS"] = 0.5
    shop = Shop(app, make, sandbox, items=2, immediate_sync=True)
    with app.app_context():
        from tatenpo.platform.redis_conn import redis

        queue = Queue("sync", connection=redis())
        inventory.set_stock(shop.products[0].id, 1)
        assert queue.count == 0  # nothing before the commit
        db.session.rollback()
        assert queue.count == 0  # nor after a rollback
        for quantity in (5, 6, 7):
            inventory.set_stock(shop.products[0].id, quantity)
            db.session.commit()
        inventory.set_stock(shop.products[1].id, 2)
        db.session.commit()
        assert queue.count == 1  # a burst of edits is one push
        SimpleWorker([queue], connection=redis()).work(burst=True)
    assert shop.mall_stock(0) == 7 and shop.mall_stock(1) == 2
    with app.app_context():
        run = db.session.scalars(select(SyncRun)).one()
        assert (run.trigger, run.total) == ("immediate", 2)
        assert db.session.get(Listing, shop.listings[0].id).reflected is True  # read back by the same job


def test_a_rakuten_ftp_push_waits_for_its_log_on_a_queue_of_its_own_so_other_stores_push_at_once(app, make, sandbox):
    # RMS writes an FTP upload's result log minutes later and the push waits for it: on the same worker as
    # everything else, that wait would hold up every other store's 即時同期.
    app.config.update(SYNC_COALESCE_SECONDS=0, RAKUTEN_FTP_LOG_POLL_SECONDS=0.2)
    ftp = Shop(app, make, sandbox, mall="rakuten-ftp", items=1, immediate_sync=True)
    yahoo = Shop(app, make, sandbox, mall="yahoo", items=1, immediate_sync=True)
    ftp.set_stock(0, 4)
    yahoo.set_stock(0, 6)
    with app.app_context():
        from tatenpo.platform.redis_conn import redis

        sync, deferred = Queue("sync", connection=redis()), Queue("sync-deferred", connection=redis())
        assert (sync.count, deferred.count) == (1, 1)
        SimpleWorker([sync], connection=redis()).work(burst=True)
        assert yahoo.mall_stock(0) == 6 and ftp.mall_stock(0) != 4 and deferred.count == 1
        SimpleWorker([deferred], connection=redis()).work(burst=True)
    assert ftp.mall_stock(0) == 4
    with app.app_context():
        runs = db.session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
        assert [(r.store_id, r.status) for r in runs] == [(yahoo.store.id, "success"), (ftp.store.id, "success")]


def test_a_store_without_immediate_sync_waits_for_the_schedule(app, make, sandbox):
    shop = Shop(app, make, sandbox, items=1)
    shop.set_stock(0, 3)
    with app.app_context():
        from tatenpo.platform.redis_conn import redis

        assert Queue("sync", connection=redis()).count == 0


def test_the_sweep_queues_due_stores_by_their_own_interval(app, make, sandbox):
    every_minute = Shop(app, make, sandbox, items=1, sync_interval_seconds=60)
    default = Shop(app, make, sandbox, items=1)
    every_minute.set_stock(0, 2)
    default.set_stock(0, 2)
    with app.app_context():
        from tatenpo import jobs

        for store in (every_minute.store, default.store):
            db.session.add(SyncRun(store_id=store.id, trigger="schedule", status="success",
                                   started_at=utcnow() - timedelta(seconds=90), finished_at=utcnow() - timedelta(seconds=90)))
        db.session.commit()
        queued = jobs.sweep()
        assert queued["push"] == [every_minute.store.id]  # 90 s ago: due at 60 s, not at 300 s
        assert jobs.sweep()["push"] == []  # already queued: never twice
        from tatenpo.platform import health

        assert health.last_beat(health.SCHEDULE_HEARTBEAT) is not None


def test_a_push_job_waits_while_another_push_of_the_store_holds_the_lock(app, make, sandbox):
    shop = Shop(app, make, sandbox, items=1)
    shop.set_stock(0, 5)
    with app.app_context():
        from tatenpo import jobs

        held = queueing.store_lock(shop.store.id)
        assert held.acquire(blocking=False)
        import time

        started = time.monotonic()
        releaser = threading.Timer(0.5, held.release)
        releaser.start()
        result = jobs.push_store(shop.store.id, "schedule")
        assert time.monotonic() - started >= 0.5
        assert result["status"] == "success"
    assert shop.mall_stock(0) == 5


def test_the_sweep_queues_read_backs_waiting_and_hourly_drift_checks_and_a_worker_runs_them(app, make, sandbox):
    shop = Shop(app, make, sandbox, mall="yahoo", items=2)
    shop.faults(reflection_delay=1)
    shop.set_stock(0, 5)
    with app.app_context():
        from tatenpo import jobs
        from tatenpo.platform.redis_conn import redis

        push_store(shop.store.id)
        db.session.execute(update(Store).values(last_drift_check_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
        import time

        time.sleep(1.1)
        queued = jobs.sweep()
        assert queued["read_back"] == [shop.store.id] and queued["drift"] == [shop.store.id]
        assert jobs.sweep()["read_back"] == []  # one queued read-back per store at a time
        SimpleWorker([Queue("sync", connection=redis())], connection=redis()).work(burst=True)
        db.session.expire_all()
        assert db.session.get(Listing, shop.listings[0].id).reflected is True
        assert readback.drift_due(db.session.get(Store, shop.store.id)) is False
        assert jobs.sweep() == {"push": [], "read_back": [], "drift": [], "mails": [], "orders": [], "prune": False}


def test_sync_run_in_the_shell_pushes_and_prints_the_run(app, make, sandbox, runner):
    shop = Shop(app, make, sandbox, items=2)
    shop.set_stock(1, 23)
    result = runner.invoke(args=["sync", "run", "--store", str(shop.store.id)])
    assert result.exit_code == 0, result.output
    assert "success" in result.output and "✓ 1" in result.output
    assert shop.mall_stock(1) == 23
    history = runner.invoke(args=["sync", "history", "--limit", "5"]).output
    assert shop.listings[1].code in history and "→ 23" in history


def test_a_long_stock_edit_during_a_push_and_the_push_both_succeed(app, make, sandbox):
    """An import-like edit holds many entries, in its own order, for a whole transaction while a push is
    sending them: neither may fail, and the mall ends at the edit's values. (The push takes row locks only
    with SKIP LOCKED and waits for a row only while holding none: see sync.push.lockable.)"""
    shop = Shop(app, make, sandbox, items=24)
    with app.app_context():
        for product in shop.products:
            inventory.set_stock(product.id, 10)
        db.session.commit()
    holding, edit_errors = threading.Event(), []

    def long_edit():
        try:
            with app.app_context():
                ordered = list(reversed(shop.products))  # not the push's order
                for n, product in enumerate(ordered):
                    inventory.set_stock(product.id, 50)
                    if n == len(ordered) // 2:
                        holding.set()
                        time.sleep(1.5)  # the push's batch goes out now, half of its entries held here
                db.session.commit()
        except Exception as exc:  # reported to the test below
            edit_errors.append(exc)
            holding.set()

    import time

    editor = threading.Thread(target=long_edit)

    def start_edit_before_the_batch(seconds):
        if not editor.is_alive() and not holding.is_set():
            editor.start()
            holding.wait(10)

    with app.app_context():
        outcome = push_store(shop.store.id, keepalive=start_edit_before_the_batch)
        editor.join(30)
        assert edit_errors == []
        assert outcome.run.status in ("success", "partial")
        push_store(shop.store.id)
        assert db.session.scalar(select(func.count()).select_from(SyncEntry)) == 0
    assert all(shop.mall_stock(i) == 50 for i in range(len(shop.items)))


def test_a_second_push_of_a_store_gives_its_worker_back_and_the_running_push_queues_it_again(app, make, sandbox):
    app.config.update(SYNC_COALESCE_SECONDS=0, MALL_RETRIES=0, MALL_TIMEOUT_SECONDS=10)
    shop = Shop(app, make, sandbox, mall="yahoo", items=2)
    shop.set_stock(0, 4)
    shop.faults(timeout=1, hang_seconds=3)  # the first call hangs: the first push holds the lock meanwhile
    from tatenpo import jobs
    from tatenpo.platform.redis_conn import redis

    def first_push():
        with app.app_context():
            jobs.push_store(shop.store.id)

    first = threading.Thread(target=first_push)
    with app.app_context():
        sync = Queue("sync", connection=redis())
        first.start()
        lock_key = queueing.LOCK_KEY.format(store_id=shop.store.id)
        while not redis().exists(lock_key):
            time.sleep(0.01)
        shop.set_stock(1, 9)
        assert jobs.push_store(shop.store.id, "immediate") == {"store": shop.store.id, "deferred": True}
        assert sync.count == 0  # given back at once, and nothing queued to spin on the lock
        first.join(30)
        assert sync.count == 1  # the first push, letting go of the lock, queued the one that waited
        SimpleWorker([sync], connection=redis()).work(burst=True)
    assert shop.mall_stock(0) == 4 and shop.mall_stock(1) == 9
    assert _entries(app, shop.store.id) == []


def test_read_back_and_drift_jobs_read_one_slice_each_and_queue_the_rest(app, make, sandbox):
    app.config["SYNC_READ_SLICE"] = 2
    shop = Shop(app, make, sandbox, mall="yahoo", items=5)
    for i in range(5):
        shop.set_stock(i, 20 + i)
    with app.app_context():
        from tatenpo import jobs
        from tatenpo.platform.redis_conn import redis

        sync = Queue("sync", connection=redis())
        push_store(shop.store.id)
        first = jobs.read_back(shop.store.id)
        assert first["checked"] == 2 and first["resume_after"] is not None and sync.count == 1
        SimpleWorker([sync], connection=redis()).work(burst=True)  # the rest, a slice per job
        db.session.expire_all()
        assert all(db.session.get(Listing, l.id).reflected for l in shop.listings[:5])
        assert not readback.pending_read_backs(shop.store.id)

        sandbox.set_stock(shop.remote["id"], [{"code": shop.items[4]["code"], "variant": shop.items[4]["variant"],
                                                "quantity": 1}])
        drift = jobs.check_drift(shop.store.id)
        assert drift["checked"] == 2 and drift["resume_after"] is not None and sync.count == 1
        assert readback.drift_due(db.session.get(Store, shop.store.id))  # not checked until the last slice
        assert jobs.sweep()["drift"] == []  # nor started over beside the slices
        SimpleWorker([sync], connection=redis()).work(burst=True)
        db.session.expire_all()
        assert db.session.get(Listing, shop.listings[4].id).drifted is True
        assert not readback.drift_due(db.session.get(Store, shop.store.id))


def test_the_sweep_takes_back_a_dead_pushs_entries_at_once_and_closes_its_run(app, make, sandbox):
    shop = Shop(app, make, sandbox, items=2, sync_interval_seconds=3600)
    shop.set_stock(0, 6)
    shop.set_stock(1, 7)
    with app.app_context():
        from tatenpo import jobs

        # What a worker killed mid-push leaves: its run "running", its claim on the entries, no lock.
        run = SyncRun(store_id=shop.store.id, trigger="schedule", status="running", started_at=utcnow())
        db.session.add(run)
        db.session.commit()
        assert push.claim(shop.store.id, f"dead:1:{run.id}:x", 100, lease=600)
        held = queueing.store_lock(shop.store.id)
        assert held.acquire(blocking=False)  # while its lock lives, the push counts as alive
        assert jobs.sweep()["push"] == []
        queueing.release_lock(held)
        assert jobs.sweep()["push"] == [shop.store.id]  # not after the lease, nor after the interval
        db.session.expire_all()
        assert (db.session.get(SyncRun, run.id).status, db.session.get(SyncRun, run.id).message) == (
            "failed", push.CODE_INTERRUPTED)
        assert all(e.leased_by is None for e in db.session.scalars(select(SyncEntry)))
        from tatenpo.platform.redis_conn import redis

        SimpleWorker([Queue("sync", connection=redis())], connection=redis()).work(burst=True)
    assert shop.mall_stock(0) == 6 and shop.mall_stock(1) == 7
