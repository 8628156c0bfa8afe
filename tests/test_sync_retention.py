"""在庫同期履歴 is kept SYNC_HISTORY_DAYS (90) days: the daily prune deletes older lines, but never a listing's
newest result (its badge), a store's last run, or a run still going."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tatenpo.models import SyncAttempt, SyncRun, utcnow
from tatenpo.platform.extensions import db
from tatenpo.sync import retention

HX = {"HX-Request": "true"}


def _age(app, attempt, days):
    """Move an attempt and its run `days` into the past."""
    with app.app_context():
        then = utcnow() - timedelta(days=days)
        db.session.execute(update(SyncAttempt).where(SyncAttempt.id == attempt.id).values(created_at=then))
        db.session.execute(update(SyncRun).where(SyncRun.id == attempt.run_id).values(started_at=then))
        db.session.commit()


def _left(app):
    with app.app_context():
        attempts = set(db.session.scalars(select(SyncAttempt.id)))
        runs = set(db.session.scalars(select(SyncRun.id)))
        return attempts, runs


def test_old_lines_go_but_each_listings_newest_result_and_each_stores_last_run_stay(app, make):
    store = make.store(mall="yahoo")
    quiet = make.store(mall="shopify")
    busy, idle = make.listing(store, make.product()), make.listing(quiet, make.product())
    old = make.attempt(store, busy, ok=True)
    newer_but_old = make.attempt(store, busy, ok=True)
    recent = make.attempt(store, busy, ok=True)
    idle_only = make.attempt(quiet, idle, ok=False, message="SKU not found")  # its listing's newest: stays
    for attempt, days in ((old, 200), (newer_but_old, 120), (recent, 10), (idle_only, 300)):
        _age(app, attempt, days)
    refused = make.store(mall="amazon")
    with app.app_context():
        blocked = SyncRun(store_id=store.id, trigger="schedule", status="blocked", started_at=utcnow() - timedelta(days=100))
        db.session.add(blocked)
        db.session.flush()
        # A run left "running" (its worker died) is the store's newest, and not the prune's to close.
        running = SyncRun(store_id=store.id, trigger="schedule", status="running", started_at=utcnow() - timedelta(days=400))
        # A store whose last run, long ago, was refused: that run is still its 最終実行.
        last_of_refused = SyncRun(store_id=refused.id, trigger="schedule", status="blocked",
                                  started_at=utcnow() - timedelta(days=500))
        db.session.add_all([running, last_of_refused])
        db.session.commit()
        running_id, blocked_id, last_of_refused_id = running.id, blocked.id, last_of_refused.id
        result = retention.prune(batch=2)  # small batches: the walk goes on past the first one
    attempts, runs = _left(app)
    assert attempts == {recent.id, idle_only.id}
    assert result.attempts == 2
    # Runs: the two emptied old runs and the old blocked one go; recent's run, idle's run (its store's last
    # and still holding an attempt) and the running one stay.
    assert runs == {recent.run_id, idle_only.run_id, running_id, last_of_refused_id}
    assert old.run_id not in runs and newer_but_old.run_id not in runs and blocked_id not in runs
    assert result.runs == 3


def test_a_listing_whose_only_result_is_an_old_failure_still_shows_it(app, client, auth, make):
    store = make.store(mall="yahoo", name="ヤフー店")
    product = make.product(code="OLD-FAIL")
    listing = make.listing(store, product)
    failure = make.attempt(store, listing, ok=False, message="在庫数が不正です")
    _age(app, failure, 365)
    with app.app_context():
        retention.prune()
    auth.login()
    row = client.get(f"/products/{product.id}/row", headers=HX).get_data(as_text=True)
    assert 'data-state="failed"' in row and "在庫数が不正です" in row


def test_the_history_page_says_how_long_it_is_kept(app, client, auth):
    app.config["SYNC_HISTORY_DAYS"] = 30
    auth.login()
    assert "履歴は30日間保存されます" in client.get("/sync").get_data(as_text=True)


def test_prune_in_the_shell_keeps_the_days_asked_for(app, make, runner):
    store = make.store(mall="yahoo")
    listing = make.listing(store, make.product())
    forty, twenty, latest = (make.attempt(store, listing) for _ in range(3))
    _age(app, forty, 40)
    _age(app, twenty, 20)
    result = runner.invoke(args=["sync", "prune", "--days", "30", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["attempts"] == 1
    assert _left(app)[0] == {twenty.id, latest.id}
    assert runner.invoke(args=["sync", "prune", "--days", "0"]).exit_code != 0  # at least a day is kept
    with app.app_context(), pytest.raises(ValueError):
        retention.prune(0)


def test_the_sweep_queues_the_prune_once_a_day(app):
    with app.app_context():
        from tatenpo import jobs
        from tatenpo.platform.redis_conn import queue, redis
        from tatenpo.sync import queueing

        redis().delete(queueing.PRUNE_KEY)
        assert jobs.sweep()["prune"] is True
        assert jobs.sweep()["prune"] is False
        assert any(job.func_name.endswith("prune_sync_history") for job in queue("default").get_jobs())
        assert 23 * 3600 < redis().ttl(queueing.PRUNE_KEY) <= 24 * 3600


def test_a_batch_boundary_inside_one_second_loses_nothing_and_keeps_nothing_extra(app, make):
    """The prune walks (time, id) in batches: lines written in the same instant, split across batches, are
    each judged once — every older line goes, each listing's newest stays, recent lines stay."""
    store = make.store(mall="yahoo")
    first, second = make.listing(store, make.product()), make.listing(store, make.product())
    old = [make.attempt(store, listing) for listing in (first, second, first, second, first, second, first)]
    recent = make.attempt(store, second)
    with app.app_context():
        then = utcnow() - timedelta(days=200)  # one instant for every old line: only the id orders them
        db.session.execute(update(SyncAttempt).where(SyncAttempt.id.in_([a.id for a in old])).values(created_at=then))
        db.session.commit()
        result = retention.prune(batch=3)
    attempts, _runs = _left(app)
    # first's newest (old[6]) stays, being its newest; second's old lines all go (recent is newer).
    assert attempts == {old[6].id, recent.id}
    assert result.attempts == 6
