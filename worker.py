"""An RQ worker for Tatenpo's queues, using the app's Redis: `python worker.py [--burst]`.
Run as many as the load needs, on as many machines as share the database and Redis."""
import sys

from rq import Worker

from tatenpo import jobs
from tatenpo.redis_conn import QUEUE_NAMES, redis

if __name__ == "__main__":
    # Built once here, so each forked job starts with the app ready (jobs.py drops inherited connections).
    app = jobs.application()
    with app.app_context():
        worker = Worker(list(QUEUE_NAMES), connection=redis())
    worker.work(burst="--burst" in sys.argv, logging_level=app.config["LOG_LEVEL"])
