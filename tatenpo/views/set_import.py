"""セット商品CSV beside 在庫CSV: export every set's parts, and import a CSV of parts → preview → confirm, all or
nothing. Routes of the `imports` blueprint (views/listing_import.py); the work is tatenpo.stock.set_csv.

A set file is small (one row per part), so the preview carries the file itself to the confirmation, and the
confirmation checks it again against the products as they are then: nothing is written from a stale preview.
"""
from __future__ import annotations

import base64
import binascii
import tempfile
from pathlib import Path

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from tatenpo.listings.reading import FileProblem
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory, set_csv, sets
from tatenpo.stock.stock_csv import ENCODINGS
from tatenpo.views.listing_import import bp
from tatenpo.views.stock_import import csv_download

MAX_BYTES = 2 * 1024 * 1024  # some 50,000 parts: far beyond any shop's sets


def _plan(data: bytes, filename: str) -> set_csv.SetPlan:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sets.csv"
        path.write_bytes(data)
        return set_csv.plan_import(path, filename)


def _page(status: int = 200, **context):
    return render_template("stock/sets_csv.html", encodings=ENCODINGS, **context), status


@bp.route("/imports/sets", methods=["GET", "POST"])
def sets_csv():
    """The page; a POSTed file is checked and previewed (nothing is written yet)."""
    if request.method == "GET":
        return _page()
    upload = request.files.get("file")
    data = upload.read(MAX_BYTES + 1) if upload is not None and upload.filename else b""
    if not data:
        return _page(400, error=_("Choose a セット商品CSV file."))
    if len(data) > MAX_BYTES:
        return _page(400, error=_("The file is larger than %(mb)s MB: a セット商品CSV has one row per part.",
                                  mb=MAX_BYTES // (1024 * 1024)))
    try:
        plan = _plan(data, upload.filename)
    except FileProblem as problem:
        db.session.rollback()
        return _page(400, error=str(problem))
    db.session.rollback()  # checking reads only
    return _page(200 if plan.ok else 400, plan=plan, filename=upload.filename,
                 data=base64.b64encode(data).decode("ascii") if plan.ok else None)


@bp.route("/imports/sets/confirm", methods=["POST"])
def sets_confirm():
    filename = (request.form.get("filename") or "sets.csv")[:255]
    try:
        data = base64.b64decode(request.form.get("data", ""), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data or len(data) > MAX_BYTES:
        flash(_("Upload the file again."), "error")
        return redirect(url_for(".sets_csv"))
    try:
        plan = _plan(data, filename)
        saved = set_csv.apply_plan(plan, user=current_user._get_current_object())
    except FileProblem as problem:
        db.session.rollback()
        return _page(400, error=str(problem))
    except (sets.SetError, inventory.StockError):
        db.session.rollback()  # the products changed since the preview: show what is wrong now
        return _page(400, plan=plan, filename=filename, data=None)
    db.session.commit()
    flash(_("Saved %(n)s sets from %(file)s.", n=saved, file=filename), "success")
    return redirect(url_for(".sets_csv"))


@bp.route("/imports/sets/export")
def sets_export():
    return csv_download(set_csv.export_csv, "sets", ".sets_csv")
