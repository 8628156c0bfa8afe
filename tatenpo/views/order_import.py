"""受注取込: upload a mall's order CSV for a store → the preview, read in the background (what each order
becomes, or the rows that stop the import) → confirm → the background import, all or nothing → the result.
Routes of the `orders` blueprint (views/orders.py), whose access rules they share. Thin: the work is
tatenpo.orders.order_csv.importer, run by the jobs preview_order_import and run_order_import on the "imports"
queue, through tatenpo.listings.lifecycle like 販売取込's."""
from __future__ import annotations


from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from tatenpo.listings import lifecycle, progress, uploads
from tatenpo.listings.reading import FileProblem
from tatenpo.models import ImportJob, Store
from tatenpo.orders.order_csv import importer
from tatenpo.platform.extensions import db
from tatenpo.views.forms import OrderImportForm
from tatenpo.views.import_queue import queue_import, queue_preview
from tatenpo.views.orders import bp

HISTORY_SIZE = 20
WORKING = (lifecycle.PREVIEWING, "queued", "running")


def _history() -> list[ImportJob]:
    return db.session.scalars(select(ImportJob).where(ImportJob.kind == importer.KIND)
                              .order_by(ImportJob.id.desc()).limit(HISTORY_SIZE)).all()


def _job_or_404(job_id: int) -> ImportJob:
    job = db.get_or_404(ImportJob, job_id)
    if job.kind != importer.KIND:
        abort(404)
    return job


@bp.route("/orders/import", methods=["GET", "POST"])
def import_upload():
    form = OrderImportForm()
    stores = db.session.scalars(select(Store).order_by(Store.id)).all()
    form.store_id.choices = [SelectChoice(s.id, s.name) for s in stores]
    if request.method == "GET" and request.args.get("store", type=int):
        form.store_id.data = request.args.get("store", type=int)
    status = 200
    if form.validate_on_submit():
        files = [(f.filename, f.stream) for f in (form.files.data or []) if getattr(f, "filename", "")]
        try:
            job = uploads.save_upload(files, kind=importer.KIND, store_id=form.store_id.data, user_id=current_user.id)
        except FileProblem as problem:
            form.files.errors = [str(problem.message)]
            status = 400
        else:
            db.session.flush()
            queue_preview(job)
            return redirect(url_for("orders.import_job", job_id=job.id))
    elif request.method == "POST":
        status = 400
    return render_template("orders/import/index.html", form=form, stores=stores, history=_history()), status


@bp.route("/orders/import/<int:job_id>")
def import_job(job_id: int):
    job = _job_or_404(job_id)
    if lifecycle.settle_lost(job):
        db.session.commit()
    return render_template("orders/import/job.html", job=job, actions=importer.ACTION_LABELS, working=WORKING,
                           progress=progress.read(job.id), waiting=lifecycle.waiting_reason(job))


@bp.route("/orders/import/<int:job_id>/progress")
def import_progress(job_id: int):
    """Polled by the job page while the worker reads or imports; once it is done the page reloads itself."""
    job = _job_or_404(job_id)
    if lifecycle.settle_lost(job):
        db.session.commit()
    if job.status not in WORKING:
        return Response("", headers={"HX-Refresh": "true"})
    return render_template("orders/import/_progress.html", job=job, progress=progress.read(job.id),
                           waiting=lifecycle.waiting_reason(job))


@bp.route("/orders/import/<int:job_id>/confirm", methods=["POST"])
def import_confirm(job_id: int):
    job = _job_or_404(job_id)
    if job.status != "previewed":
        flash(_("This upload cannot be imported (it was imported already, or it has errors)."), "error")
        return redirect(url_for("orders.import_job", job_id=job.id))
    queue_import(job)
    return redirect(url_for("orders.import_job", job_id=job.id))
