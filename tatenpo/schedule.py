"""The periodic jobs, declared as data for RQ's built-in scheduler: `rq cron tatenpo.schedule`.

RQ's own `rq cron` replaces the separate rq-scheduler package, which is no longer developed and whose
repeating jobs were seen to vanish after TTLs expired or restarts. Run exactly one cron process.

One job, the sweep, ticks more often than the 5-minute push interval (SYNC_INTERVAL_SECONDS): each tick
queues only the stores whose own interval has passed (a store may override it, down to 10 s), the
read-backs waiting for their next check, and the hourly drift checks. What is due lives in the database,
so a lost tick only delays work.
"""
from rq import cron

from tatenpo import jobs
from tatenpo.platform import config

_config = config.load(config.instance_path())
_interval = _config["SYNC_INTERVAL_SECONDS"]
# The order API polls (ORDER_POLL_SECONDS) are queued by the same sweep: a shorter poll interval ticks it sooner.
_tick = max(1, min(_interval, int(_config["ORDER_POLL_SECONDS"]), int(_config.get("SYNC_TICK_SECONDS", 30))))

cron.register(
    jobs.sweep,
    queue_name="sync",
    interval=_tick,
    job_timeout=jobs.sweep.spec.timeout,
    result_ttl=jobs.sweep.spec.result_ttl,
    name="sweep",
)

# Every day at 09:00 JST (rq cron reads cron strings in UTC): the expiring-credential reminders. A missed day only
# delays a reminder: the next check sends the one due (tatenpo.setup.credential_reminders).
cron.register(
    jobs.remind_expiring_credentials,
    queue_name="default",
    cron="0 0 * * *",
    job_timeout=jobs.remind_expiring_credentials.spec.timeout,
    result_ttl=jobs.remind_expiring_credentials.spec.result_ttl,
    name="remind_expiring_credentials",
)
