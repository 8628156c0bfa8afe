"""The life of a background import (販売取込 and 在庫取込 alike). The upload request only stores the file and
queues its preview (status `previewing`); the worker reads the file and fills the preview (`preview`), then
the shop confirms and the worker imports (`run`): mark it running, do the work in one transaction, then mark
it done — or roll everything back, mark it failed with the reason in the user's language, and let the
exception propagate to RQ (its failed-job registry and retries). Also: noticing that the background job a
preview or an import waits on is gone (settle_lost)."""
from __future__ import annotations

import logging
from typing import Any, Callable

from flask_babel import force_locale, ngettext
from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from tatenpo.listings import progress, uploads
from tatenpo.listings.bulk import cycle_collection_paused
from tatenpo.listings.reading import FileProblem
from tatenpo.listings.records import ERRORS_ON_JOB
from tatenpo.models import ImportJob, utcnow
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import redis

log = logging.getLogger(__name__)


class RowsRefused(Exception):
    """Some rows have errors (kept on the job): nothing was written."""


def run(job_id: int, work: Callable[[ImportJob, progress.Reporter], str], expected: tuple = ()) -> ImportJob:
    """`work(job, reporter)` writes in the session and returns the success message; it may set job.result.
    Exceptions of `expected` types (and FileProblem, RowsRefused) are the user's to fix; others are logged."""
    job = db.session.get(ImportJob, job_id)
    if job is None:
        raise LookupError(f"import job {job_id} does not exist")
    if job.status == "done":
        return job  # a retried RQ job must not import twice
    locale = (job.user.locale if job.user is not None else None) or "ja"
    job.status = "running"
    job.started_at = utcnow()
    job.done_rows = 0
    db.session.commit()
    try:
        with force_locale(locale), cycle_collection_paused():
            message = work(job, progress.Reporter(job.id))
            job.status = "done"
            job.finished_at = utcnow()
            job.message = message
        db.session.commit()
    except BaseException as exc:
        refused = isinstance(exc, RowsRefused)
        errors, error_count = (list(job.errors or []), job.error_count) if refused else (None, None)
        db.session.rollback()
        _mark_failed(job_id, exc, errors, error_count, locale, (FileProblem, RowsRefused, *expected))
        raise
    uploads.discard(job)
    progress.clear(job.id)
    return job


# Waiting for the worker to read the file and fill the preview (ImportJob.status).
PREVIEWING = "previewing"


def preview(job_id: int, make_preview: Callable[[ImportJob, progress.Reporter], Any]) -> ImportJob:
    """The background preview: `make_preview(job, reporter)` reads the stored file and fills the job's preview
    (or marks it failed with the reason, for a file that cannot be used); committed here. A preview that
    breaks unexpectedly marks the job failed — nothing is imported — and propagates to RQ."""
    job = db.session.get(ImportJob, job_id)
    if job is None:
        raise LookupError(f"import job {job_id} does not exist")
    if job.status != PREVIEWING:
        return job  # settled meanwhile (a lost job given up): the shop uploads again
    locale = (job.user.locale if job.user is not None else None) or "ja"
    try:
        with force_locale(locale):
            make_preview(job, progress.Reporter(job.id))
        db.session.commit()
    except BaseException as exc:
        db.session.rollback()
        job = db.session.get(ImportJob, job_id)
        if job is not None:
            log.exception("preview of import %s failed", job_id)
            with force_locale(locale):
                job.message = str(_l("The file could not be previewed and nothing was imported: %(reason)s",
                                     reason=str(exc) or type(exc).__name__))
            job.status = "failed"
            job.finished_at = utcnow()
            db.session.commit()
        raise
    finally:
        progress.clear(job_id)
    return job


def refuse(job: ImportJob, problems) -> None:
    """Keep the row errors on the job and stop: nothing of the file is written."""
    job.errors = [e.as_dict() for e in problems.errors[:ERRORS_ON_JOB]]
    job.error_count = problems.error_count
    raise RowsRefused(str(_l("%(count)s rows have errors; nothing was imported.", count=problems.error_count)))


def settle_lost(job: ImportJob) -> bool:
    """Mark the import failed (mark_lost) when it still waits on a background job (its preview or its
    import) RQ no longer runs; True when it did, for the caller to commit."""
    if job.status not in (PREVIEWING, "queued", "running") or not background_job_lost(job):
        return False
    mark_lost(job)
    return True


def background_job_lost(job: ImportJob) -> bool:
    """True when RQ no longer has the job, or has it as failed/stopped while our row still waits on it."""
    if not job.rq_job_id:
        return False
    try:
        status = Job.fetch(job.rq_job_id, connection=redis()).get_status()
    except NoSuchJobError:
        return True
    return status in ("failed", "stopped", "canceled")


def waiting_reason(job: ImportJob) -> str | None:
    """Why a confirmed import has not started yet, in the user's words: no worker takes its queue, jobs are
    ahead of it in the queue, or every worker that takes the queue is busy with another job. None when it
    does not wait (or Redis cannot say). A preview waits for the same worker and is told the same."""
    if job.status not in ("queued", PREVIEWING) or not job.rq_job_id:
        return None
    try:
        connection = redis()
        background = Job.fetch(job.rq_job_id, connection=connection)
        if background.get_status() != "queued":
            return None  # a worker has it (or it ended): nothing to wait for
        queue = Queue(background.origin, connection=connection)
        workers = Worker.all(queue=queue)
        if not workers:
            return str(_l("No background worker takes imports (queue “%(queue)s”): start one with "
                          "python worker.py --queues %(queue)s.", queue=queue.name))
        ahead = queue.get_job_position(job.rq_job_id)
        if ahead:
            return ngettext("%(num)s job is ahead of this import in the queue.",
                            "%(num)s jobs are ahead of this import in the queue.", ahead)
        if all(worker.get_state() == "busy" for worker in workers):
            return str(_l("The worker that runs imports is finishing another job; the import starts right after."))
    except (RedisError, NoSuchJobError):  # the page still shows the import as waiting
        return None
    return None


def mark_lost(job: ImportJob) -> None:
    """The background job is gone (worker killed, Redis restarted) while the row still says queued/running.
    Its transaction never committed, so nothing was imported; say so instead of polling forever."""
    previewing = job.status == PREVIEWING
    job.status = "failed"
    job.finished_at = utcnow()
    if previewing:
        job.message = str(_l("The preview stopped before it finished (the worker was stopped or restarted). "
                             "Nothing was imported; upload the file again."))
        return
    job.message = str(_l("The background import stopped before it finished (the worker was stopped or restarted). "
                         "Nothing was imported; upload the file again."))


def _mark_failed(job_id: int, exc: BaseException, errors, error_count, locale: str, expected: tuple) -> None:
    job = db.session.get(ImportJob, job_id)
    if job is None:
        return
    with force_locale(locale):
        if isinstance(exc, expected):
            message = str(exc)
        else:
            log.exception("import %s failed", job_id)
            message = str(_l("The import failed and nothing was changed: %(reason)s", reason=str(exc) or type(exc).__name__))
    job.status = "failed"
    job.message = message
    job.finished_at = utcnow()
    if errors is not None:
        job.errors = errors
        job.error_count = error_count or len(errors)
    db.session.commit()
