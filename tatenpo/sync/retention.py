"""How long 在庫同期履歴 is kept. Every push writes one SyncAttempt per listing, so a shop with ten thousand
listings that change a few times a day writes millions of rows a year. Left alone, that history slows the
✗ filter and the newest-attempt lookups, and it fills the disk.

`prune` deletes the lines older than SYNC_HISTORY_DAYS (90 days by default). It never deletes:
- the newest attempt of each listing, because that attempt is the listing's badge (✗ stays until the next
  push) and the base of its read-back;
- the newest run of each store, because that run is its 最終実行;
- a run that is still running.
It deletes in batches of short transactions, so that a stock save never waits long behind it on SQLite.
The sweep queues it once a day; `flask sync prune` runs it from the shell.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from flask import current_app
from sqlalchemy import delete, exists, func, select

from tatenpo.models import SyncAttempt, SyncRun, utcnow
from tatenpo.platform.extensions import db

# Rows per delete: under the bound-parameter limit of older SQLite builds (999), like inventory.CHUNK.
BATCH = 900


@dataclass
class Pruned:
    attempts: int
    runs: int
    before: datetime  # what was older than this went

    def as_dict(self) -> dict:
        return {"attempts": self.attempts, "runs": self.runs, "before": self.before.isoformat()}


def history_days() -> int:
    return int(current_app.config.get("SYNC_HISTORY_DAYS", 90))


def prune(days: Optional[int] = None, now: Optional[datetime] = None, batch: int = BATCH) -> Pruned:
    """Delete 在庫同期履歴 older than `days` (SYNC_HISTORY_DAYS), except what the module docstring keeps.
    Commits after each batch."""
    days = history_days() if days is None else days
    if days < 1:
        raise ValueError("the history is kept for at least one day")
    before = (now or utcnow()) - timedelta(days=days)
    # Read once: the newest attempt per listing. Attempts only grow, so a listing's newest attempt cannot
    # become older than the cutoff while the prune runs.
    newest = set(db.session.scalars(
        select(func.max(SyncAttempt.id)).where(SyncAttempt.listing_id.is_not(None)).group_by(SyncAttempt.listing_id)
    ))
    attempts, after_id = 0, 0
    while True:
        # Attempt ids grow with time, so walking the primary key from the oldest reaches the old ones first.
        ids = db.session.scalars(
            select(SyncAttempt.id).where(SyncAttempt.id > after_id, SyncAttempt.created_at < before)
            .order_by(SyncAttempt.id).limit(batch)
        ).all()
        if not ids:
            break
        after_id = ids[-1]
        doomed = [i for i in ids if i not in newest]
        if doomed:
            attempts += db.session.execute(
                delete(SyncAttempt).where(SyncAttempt.id.in_(doomed)).execution_options(synchronize_session=False)
            ).rowcount
        db.session.commit()
        if len(ids) < batch:
            break
    newest_runs = select(func.max(SyncRun.id)).where(SyncRun.store_id.is_not(None)).group_by(SyncRun.store_id)
    runs = 0
    while True:
        ids = db.session.scalars(
            select(SyncRun.id).where(
                SyncRun.started_at < before, SyncRun.status != "running", SyncRun.id.not_in(newest_runs),
                ~exists().where(SyncAttempt.run_id == SyncRun.id),
            ).order_by(SyncRun.id).limit(batch)
        ).all()
        if not ids:
            break
        deleted = db.session.execute(
            delete(SyncRun).where(SyncRun.id.in_(ids)).execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        runs += deleted
        if deleted < len(ids):  # another process got there first; the next prune finishes the rest
            break
    return Pruned(attempts, runs, before)
