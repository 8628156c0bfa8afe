"""Is everything up? The database, Redis, at least one live worker, and the scheduler's last tick."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app
from rq import Worker
from rq.cron import CronScheduler
from sqlalchemy import select, text

from tatenpo.models import Heartbeat, utcnow
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import QUEUE_NAMES, redis

SCHEDULE_HEARTBEAT = "schedule"


def beat(name: str, detail: str | None = None) -> None:
    """Record that a background process did its round (committed by the caller)."""
    row = db.session.get(Heartbeat, name)
    if row is None:
        db.session.add(Heartbeat(name=name, seen_at=utcnow(), detail=detail))
    else:
        row.seen_at = utcnow()
        row.detail = detail


def last_beat(name: str) -> datetime | None:
    return db.session.scalar(select(Heartbeat.seen_at).where(Heartbeat.name == name))


def scheduler_stale_after() -> timedelta:
    """No run for two intervals means the schedule has stopped."""
    return timedelta(seconds=2 * current_app.config["SYNC_INTERVAL_SECONDS"])


def report() -> tuple[bool, dict]:
    checks: dict[str, dict] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "backend": db.engine.dialect.name}
    except Exception as exc:  # the report must say what is down, whatever the failure
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        connection = redis()
        connection.ping()
        checks["redis"] = {"ok": True}
    except Exception as exc:
        connection = None
        checks["redis"] = {"ok": False, "error": type(exc).__name__}

    if connection is not None:
        try:
            workers = Worker.all(connection=connection)
            seen = [w.last_heartbeat for w in workers if w.last_heartbeat]
            last = max(seen) if seen else None
            # A queue no worker takes (e.g. sync-deferred when workers were started with --queues) never runs.
            served = {name for w in workers for name in w.queue_names()}
            unserved = [name for name in QUEUE_NAMES if name not in served]
            checks["worker"] = {"ok": bool(workers) and not unserved, "count": len(workers), "last_seen": _iso(last),
                                "queues_without_worker": unserved}
        except Exception as exc:
            checks["worker"] = {"ok": False, "error": type(exc).__name__}
        try:
            schedulers = CronScheduler.all(connection)
            beats = [s.last_heartbeat for s in schedulers]
            beats = [b for b in beats if b]
            checks["scheduler"] = {"ok": bool(schedulers), "count": len(schedulers), "last_seen": _iso(max(beats) if beats else None)}
        except Exception as exc:
            checks["scheduler"] = {"ok": False, "error": type(exc).__name__}
    else:
        checks["worker"] = {"ok": False, "error": "redis down"}
        checks["scheduler"] = {"ok": False, "error": "redis down"}

    if checks["database"]["ok"]:
        tick = last_beat(SCHEDULE_HEARTBEAT)
        fresh = tick is not None and utcnow() - tick <= scheduler_stale_after()
        checks["schedule_tick"] = {"ok": fresh, "last_tick": _iso(tick)}
    else:
        checks["schedule_tick"] = {"ok": False, "error": "database down"}
    return all(c["ok"] for c in checks.values()), checks


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()
