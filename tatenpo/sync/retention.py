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
from sqlalchemy import delete, exists, func, or_, select, tuple_
from sqlalchemy.orm import aliased

from tatenpo.models import SyncAttempt, SyncRun, utcnow
from tatenpo.platform.extensions import db

# Lines per delete: a short transaction each (a stock save waits behind it on SQLite), and few enough
# commits for a day of a million listings' pushes to go in minutes. Runs are deleted by id lists: those
# batches stay under the bound-parameter limit of older SQLite builds (999), like inventory.CHUNK.
BATCH = 5000
RUN_BATCH = 900


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
    attempts, last = 0, None
    while True:
        # The old lines in time order (ix_sync_attempts_created), a batch at a time: the batch ends at the
        # key (created_at, id) of its last line, and one DELETE takes the range — no list of ids to bind.
        older = select(SyncAttempt.created_at, SyncAttempt.id).where(SyncAttempt.created_at < before)
        if last is not None:
            older = older.where(tuple_(SyncAttempt.created_at, SyncAttempt.id) > tuple_(*last))
        end = db.session.execute(
            older.order_by(SyncAttempt.created_at, SyncAttempt.id).offset(batch - 1).limit(1)).first()
        in_batch = [SyncAttempt.created_at < before]
        if last is not None:
            in_batch.append(tuple_(SyncAttempt.created_at, SyncAttempt.id) > tuple_(*last))
        if end is not None:
            in_batch.append(tuple_(SyncAttempt.created_at, SyncAttempt.id) <= tuple_(*end))
        # A listing's newest attempt stays: only a line with a newer one of its listing goes (one step in
        # ix_sync_attempts_listing_newest per line, whatever the size of the history).
        newer = aliased(SyncAttempt)
        has_newer = exists().where(newer.listing_id == SyncAttempt.listing_id, newer.id > SyncAttempt.id)
        attempts += db.session.execute(
            delete(SyncAttempt).where(*in_batch, or_(SyncAttempt.listing_id.is_(None), has_newer))
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if end is None:
            break
        last = tuple(end)
    newest_runs = select(func.max(SyncRun.id)).where(SyncRun.store_id.is_not(None)).group_by(SyncRun.store_id)
    runs = 0
    while True:
        ids = db.session.scalars(
            select(SyncRun.id).where(
                SyncRun.started_at < before, SyncRun.status != "running", SyncRun.id.not_in(newest_runs),
                ~exists().where(SyncAttempt.run_id == SyncRun.id),
            ).order_by(SyncRun.id).limit(min(batch, RUN_BATCH))
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
