"""An RQ worker for Tatenpo's queues, using the app's Redis: `python worker.py [--burst] [--queues a,b]`.
Run as many as the load needs, on as many machines as share the database and Redis. Without --queues a
worker takes every queue (redis_conn.QUEUE_NAMES, in that order); `make run` starts SYNC_WORKERS for `sync`
(the first takes `imports` first) and one for `sync-deferred` alone (redis_conn.worker_queues)."""
import argparse

from rq import Worker

from tatenpo.platform import tasks
from tatenpo.platform.redis_conn import QUEUE_NAMES, redis

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="stop once the queues are empty")
    parser.add_argument("--queues", default=",".join(QUEUE_NAMES), help="comma-separated, in priority order")
    args = parser.parse_args()
    queues = [name for name in args.queues.split(",") if name]
    unknown = sorted(set(queues) - set(QUEUE_NAMES))
    if unknown or not queues:
        parser.error(f"unknown queue {', '.join(unknown) or '(none)'}; the queues are {', '.join(QUEUE_NAMES)}")
    # Built once here, so each forked job starts with the app ready (tasks.application drops inherited connections).
    app = tasks.application()
    with app.app_context():
        worker = Worker(queues, connection=redis())
    worker.work(burst=args.burst, logging_level=app.config["LOG_LEVEL"])
