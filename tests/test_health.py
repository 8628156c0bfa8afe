"""GET /healthz: green only when the database, Redis, a worker and the scheduler are all alive."""
from __future__ import annotations

from rq import SimpleWorker

from tatenpo import jobs
from tatenpo.platform import health
from tatenpo.platform.redis_conn import queue, redis


def test_healthz_is_public_and_names_what_is_down(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["database"]["ok"] and checks["redis"]["ok"]
    assert not checks["worker"]["ok"] and not checks["scheduler"]["ok"]
    assert checks["schedule_tick"]["last_tick"] is None


def test_the_schedule_tick_is_written_by_the_sweep_job_on_a_real_worker(app, client):
    with app.app_context():
        queue("sync").enqueue(jobs.sweep)
        SimpleWorker([queue("sync")], connection=redis()).work(burst=True)
        assert health.last_beat(health.SCHEDULE_HEARTBEAT) is not None
    checks = client.get("/healthz").json["checks"]
    assert checks["schedule_tick"]["ok"] is True


def test_healthz_reports_redis_down(app, client):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"]["ok"] is False
    assert response.json["checks"]["database"]["ok"] is True


def test_a_queue_no_worker_takes_is_reported(app, client):
    # Workers started with --queues may leave one out: its jobs would wait forever.
    with app.app_context():
        from tatenpo.platform.redis_conn import QUEUE_NAMES

        partial = SimpleWorker([queue(name) for name in QUEUE_NAMES if name != "sync-deferred"], connection=redis())
        partial.register_birth()
        try:
            checks = client.get("/healthz").json["checks"]
            assert checks["worker"]["ok"] is False and checks["worker"]["queues_without_worker"] == ["sync-deferred"]
            deferred = SimpleWorker([queue("sync-deferred")], connection=redis())
            deferred.register_birth()
            try:
                checks = client.get("/healthz").json["checks"]
                assert checks["worker"]["ok"] is True and checks["worker"]["queues_without_worker"] == []
            finally:
                deferred.register_death()
        finally:
            partial.register_death()
