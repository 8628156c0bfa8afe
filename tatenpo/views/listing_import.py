"""販売取込: upload a mall's listing file → preview → what to import and, for a file no mall format matches,
which column is what → confirm → the background import with its progress bar → the result, the import
history and the error report. The job pages serve 在庫取込 (views/stock_import.py) too.

The upload request only stores the file and queues its preview: the worker reads the file (with the same
progress bar as the import) while the page polls, so a big file costs the web process neither the seconds
nor the memory of reading it (listings/lifecycle.py).

The import screens (this one, 未紐付け and 在庫CSV) share one blueprint, `imports`, created here: their
endpoints are imports.*. Thin: the work is in tatenpo.listings; the import itself runs on the RQ queue
"imports"."""
from __future__ import annotations

import csv
import io
import time

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from tatenpo.listings import generic, lifecycle, progress, uploads
from tatenpo.listings.reading import FileProblem, open_table
from tatenpo.models import ImportJob, Store, utcnow
from tatenpo.platform.extensions import db
from tatenpo.stock import stock_csv
from tatenpo.views.forms import ConfirmForm, MappingForm, OptionsForm, UploadForm, format_choices
from tatenpo.views.import_queue import queue_import, queue_preview

bp = Blueprint("imports", __name__)

HISTORY_SIZE = 30
# HTTP 286 tells htmx to stop polling.
STOP_POLLING = 286


def stores() -> list[Store]:
    return db.session.scalars(select(Store).order_by(Store.id)).all()


def history(kind: str) -> list[ImportJob]:
    return db.session.scalars(
        select(ImportJob).where(ImportJob.kind == kind).order_by(ImportJob.id.desc()).limit(HISTORY_SIZE)
    ).all()


def _files(field) -> list:
    return [(f.filename, f.stream) for f in (field.data or []) if getattr(f, "filename", "")]


@bp.route("/imports", methods=["GET", "POST"])
def index():
    form = UploadForm()
    choices = stores()
    form.store_id.choices = [SelectChoice(s.id, s.name) for s in choices]
    form.format.choices = format_choices()
    if request.method == "GET" and request.args.get("store", type=int):
        form.store_id.data = request.args.get("store", type=int)
    status = 200
    if form.validate_on_submit():
        accepted = accept_upload(
            form, kind="listings", store_id=form.store_id.data,
            options={"format": form.format.data or None, "create_products": bool(form.create_products.data)},
        )
        if accepted is not None:
            return accepted
        status = 400
    elif request.method == "POST":
        status = 400
    return render_template("imports/index.html", form=form, stores=choices, history=history("listings")), status


def accept_upload(form, *, kind: str, store_id, options=None):
    """Save the uploaded file(s), queue their preview and go to the job's page (which shows the preview's
    progress); None (the reason on the form's file field) when nothing usable was uploaded."""
    try:
        job = uploads.save_upload(_files(form.files), kind=kind, store_id=store_id, user_id=current_user.id,
                                  options=options or {})
    except FileProblem as problem:
        form.files.errors = [str(problem.message)]
        return None
    db.session.flush()
    queue_preview(job)
    return redirect(url_for(".job", job_id=job.id))


def _options_form(job: ImportJob) -> OptionsForm:
    options = job.options or {}
    form = OptionsForm(
        scope="items" if options.get("items") else "first" if options.get("first_items") else "all",
        first_items=options.get("first_items") or 1,
        items="\n".join(options.get("items") or []),
        create_products=bool(options.get("create_products", True)),
    )
    return form


def _mapping_form(job: ImportJob, formdata=None) -> MappingForm | None:
    """The column-mapping form for a file no mall format matched (headers of its first file)."""
    if job.kind != "listings" or job.store_id is None:
        return None
    try:
        (path, name), *_ = uploads.job_files(job)
        headers = open_table(path, name).headers
    except FileProblem:
        return None
    store = db.session.get(Store, job.store_id)
    saved = generic.mapping(store.settings or {}) if store else {}
    form = MappingForm(formdata=formdata, data=saved) if formdata is None else MappingForm(formdata=formdata)
    none = [SelectChoice("", _l("(not in the file)"))]
    for field in generic.FIELDS:
        getattr(form, field).choices = (none if field != "item_code" else [SelectChoice("", "—")]) + [SelectChoice(h, h) for h in headers if h]
    return form


@bp.route("/imports/<int:job_id>")
def job(job_id: int):
    job = db.get_or_404(ImportJob, job_id)
    mapping = None
    if job.status == "failed" and job.kind == "listings" and (job.preview or {}).get("unrecognised"):
        mapping = _mapping_form(job)
    return render_template(
        "imports/job.html",
        job=job,
        store=db.session.get(Store, job.store_id) if job.store_id else None,
        options_form=_options_form(job),
        confirm_form=ConfirmForm(),
        mapping_form=mapping,
        state=_progress_state(job),
    )


@bp.route("/imports/<int:job_id>/options", methods=["POST"])
def options(job_id: int):
    """Change what to import (まず1〜数商品で試す, create products or not) and preview again."""
    job = db.get_or_404(ImportJob, job_id)
    if job.status not in ("previewed", "failed") or job.kind != "listings":
        abort(409)
    form = OptionsForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for(".job", job_id=job.id))
    items = [line.strip() for line in (form.items.data or "").replace(",", "\n").splitlines() if line.strip()]
    new = dict(job.options or {})
    new["create_products"] = bool(form.create_products.data)
    new["items"] = items if form.scope.data == "items" else None
    new["first_items"] = form.first_items.data if form.scope.data == "first" else None
    if form.scope.data == "items" and not items:
        flash(_("Enter at least one item code."), "error")
        return redirect(url_for(".job", job_id=job.id))
    job.options = new
    queue_preview(job)
    return redirect(url_for(".job", job_id=job.id))


@bp.route("/imports/<int:job_id>/mapping", methods=["POST"])
def mapping(job_id: int):
    """Remember which column is what for this store's own CSV (the generic format), then preview again."""
    job = db.get_or_404(ImportJob, job_id)
    form = _mapping_form(job, formdata=request.form)
    if form is None:
        abort(409)
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for(".job", job_id=job.id))
    store = db.session.get(Store, job.store_id)
    chosen = {field: getattr(form, field).data for field in generic.FIELDS if getattr(form, field).data}
    store.settings = {**(store.settings or {}), generic.SETTINGS_KEY: chosen}
    job.options = {**(job.options or {}), "format": generic.FORMAT.name}
    queue_preview(job)
    return redirect(url_for(".job", job_id=job.id))


@bp.route("/imports/<int:job_id>/confirm", methods=["POST"])
def confirm(job_id: int):
    job = db.get_or_404(ImportJob, job_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if job.status != "previewed":
        flash(_("This import has already been started."), "error")
        return redirect(url_for(".job", job_id=job.id))
    if job.error_count:
        flash(_("Fix the rows with errors and upload the file again: nothing is imported while errors remain."), "error")
        return redirect(url_for(".job", job_id=job.id))
    queue_import(job)
    return redirect(url_for(".job", job_id=job.id))


def _progress_state(job: ImportJob) -> dict:
    """Rows done / total, percent and ETA for the progress bar (from Redis while the job runs)."""
    total = job.total_rows or 0
    state = {"done": 0, "total": total, "percent": 0, "eta": None, "stage": job.status}
    if job.status == "done":
        state.update(done=total, percent=100)
        return state
    if job.status == lifecycle.PREVIEWING:
        return _preview_state(state, progress.read(job.id))
    if job.status != "running":
        return state
    current = progress.read(job.id)
    if not current:
        return state
    stage_total = current["total"] or 1
    fraction = min(1.0, current["done"] / stage_total)
    # Reading is about half the work, writing the other half.
    overall = fraction / 2 if current["stage"] == "read" else 0.5 + fraction / 2
    done_rows = current["done"] if current["stage"] == "read" else total
    state.update(stage=current["stage"], done=min(done_rows, total) if total else done_rows,
                 written=current["done"] if current["stage"] == "write" else 0,
                 write_total=current["total"] if current["stage"] == "write" else 0,
                 percent=int(overall * 100))
    if job.started_at and overall > 0.02:
        elapsed = (utcnow() - job.started_at).total_seconds()
        state["eta"] = int(elapsed / overall * (1 - overall))
    return state


def _preview_state(state: dict, current: dict | None) -> dict:
    """The preview reading its file: the share of its bytes read, and the time left at that pace."""
    if not current or current["stage"] != progress.PREVIEW or not current["total"]:
        return state
    fraction = min(1.0, current["done"] / current["total"])
    state.update(stage=progress.PREVIEW, percent=int(fraction * 100))
    started = current.get("started")
    if started and fraction > 0.02:
        elapsed = max(0.0, time.time() - started)
        state["eta"] = int(elapsed / fraction * (1 - fraction))
    return state


@bp.route("/imports/<int:job_id>/progress")
def job_progress(job_id: int):
    """htmx polling target: the progress bar while the preview is read or the import queued/running; once the
    preview or the import has finished, 286 and a reload of the page (which shows it)."""
    job = db.get_or_404(ImportJob, job_id)
    db.session.refresh(job)
    if lifecycle.settle_lost(job):
        db.session.commit()
    body = render_template("imports/_progress.html", job=job, state=_progress_state(job))
    # A finished preview too: the page reloads to show it.
    finished = job.status in ("previewed", "done", "failed")
    response = make_response(body, STOP_POLLING if finished else 200)
    if finished:
        response.headers["HX-Refresh"] = "true"
    return response


@bp.route("/imports/<int:job_id>/errors.csv")
def error_report(job_id: int):
    """The row errors as a CSV Excel opens (UTF-8 with BOM): file, row, column, message."""
    job = db.get_or_404(ImportJob, job_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_("File"), _("Row"), _("Column"), _("Error")])
    for error in job.errors or []:
        writer.writerow([
            stock_csv.neutralise(error.get("file") or job.filename), error.get("row") or "",
            stock_csv.neutralise(error.get("column") or ""), stock_csv.neutralise(error.get("message") or ""),
        ])
    if job.error_count > len(job.errors or []):
        writer.writerow(["", "", "", _("… and %(n)s more errors.", n=job.error_count - len(job.errors or []))])
    response = Response(buffer.getvalue().encode("utf-8-sig"), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename=import-{job.id}-errors.csv"
    return response
