"""Handing an upload to the worker, for every kind of import (販売取込, 在庫取込, 受注取込): its preview, then,
once the shop confirms, the import itself. One table of jobs by ImportJob.kind, and one way of telling the shop
that the job queue cannot be reached (the upload stays stored; the shop tries again)."""
from __future__ import annotations

import secrets

from flask import current_app, flash
from flask_babel import gettext as _

from tatenpo.listings import lifecycle
from tatenpo.models import ImportJob
from tatenpo.platform import tasks
from tatenpo.platform.extensions import db

PREVIEW_JOBS = {
    "listings": "tatenpo.jobs.preview_listing_import",
    "stock": "tatenpo.jobs.preview_stock_import",
    "orders": "tatenpo.jobs.preview_order_import",
}
IMPORT_JOBS = {
    "listings": "tatenpo.jobs.run_listing_import",
    "stock": "tatenpo.jobs.run_stock_import",
    "orders": "tatenpo.jobs.run_order_import",
}


def queue_preview(job: ImportJob) -> bool:
    """Hand the reading of the stored file to the worker (lifecycle.preview) and commit; False when the job
    queue cannot be reached: a new upload is then failed with the reason (its page shows it), a re-preview
    keeps its previous preview and the reason is flashed."""
    before = (job.status, job.preview, job.errors, job.error_count, job.message)
    job.status = lifecycle.PREVIEWING
    job.preview, job.errors, job.error_count, job.message = {}, [], 0, None
    # A fresh id for every preview: RQ keeps a finished job's id for a while.
    job.rq_job_id = f"tatenpo-preview-{job.id}-{secrets.token_hex(4)}"
    db.session.commit()
    try:
        tasks.enqueue(PREVIEW_JOBS[job.kind], job.id, job_id=job.rq_job_id)
    except Exception as exc:  # Redis down: say so, and let the shop try again
        current_app.logger.error("could not queue the preview of import %s: %s", job.id, exc)
        message = _("The file could not be previewed (the job queue is not reachable). Try again in a moment.")
        job.rq_job_id = None
        if before[0] == "uploaded":
            job.status, job.message = "failed", message
        else:
            job.status, job.preview, job.errors, job.error_count, job.message = before
            flash(message, "error")
        db.session.commit()
        return False
    return True


def queue_import(job: ImportJob) -> bool:
    """Hand a confirmed preview's import to the worker and commit; False, with the preview kept and the reason
    flashed, when the job queue cannot be reached."""
    job.status = "queued"
    job.rq_job_id = f"tatenpo-import-{job.id}"
    db.session.commit()
    try:
        tasks.enqueue(IMPORT_JOBS[job.kind], job.id, job_id=job.rq_job_id)
    except Exception as exc:  # Redis down: say so, and let the shop try again
        current_app.logger.error("could not queue import %s: %s", job.id, exc)
        job.status = "previewed"
        db.session.commit()
        flash(_("The import could not be started (the job queue is not reachable). Try again in a moment."), "error")
        return False
    return True
