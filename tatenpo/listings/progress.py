"""Progress of a running import, kept in Redis: the import writes everything in one database transaction,
so its progress cannot live in a row that nobody else can see until the end."""
from __future__ import annotations

import json
import time
from typing import Optional

from tatenpo.platform.redis_conn import redis

_TTL = 24 * 3600
# The stage of a preview reading its file: done and total are bytes (the rows are not counted before they
# are read). The import's stages are "read" and "write", in rows.
PREVIEW = "preview"


def _key(job_id: int) -> str:
    return f"tatenpo:import:{job_id}:progress"


class Reporter:
    """Writes (stage, done, total) at most every half second, with when the reporting began (for the time
    left while the preview runs: the ImportJob's started_at is the import's)."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self._last = 0.0
        self._started = time.time()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.5 and done < total:
            return
        self._last = now
        redis().set(_key(self.job_id), json.dumps({"stage": stage, "done": done, "total": total, "started": self._started}), ex=_TTL)


def read(job_id: int) -> Optional[dict]:
    raw = redis().get(_key(job_id))
    return json.loads(raw) if raw else None


def clear(job_id: int) -> None:
    redis().delete(_key(job_id))
