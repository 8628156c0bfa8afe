"""The periodic jobs, declared as data for RQ's built-in scheduler: `rq cron tatenpo.schedule`.

RQ's own `rq cron` replaces the separate rq-scheduler package, which is no longer developed and whose
repeating jobs were seen to vanish after TTLs expired or restarts. Run exactly one cron process.
"""
from rq import cron

from . import create_app, jobs

_config = create_app().config

cron.register(
    jobs.sweep,
    queue_name="sync",
    interval=_config["SYNC_INTERVAL_SECONDS"],
    job_timeout=_config["SYNC_INTERVAL_SECONDS"],
    name="sweep",
)
