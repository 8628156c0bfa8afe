"""在庫CSV: 在庫出力 (every product's 商品コード and 在庫数, for Excel) and 在庫取込 (upload → the preview, read by
the worker, on the job page → confirm → the background import). Routes of the `imports` blueprint (views/listing_import.py, whose
job pages it shares); the work is tatenpo.stock.stock_csv."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import to_user_timezone

from tatenpo.listings.reading import FileProblem
from tatenpo.stock import stock_csv
from tatenpo.views.forms import StockUploadForm
from tatenpo.views.listing_import import accept_upload, bp, history


@bp.route("/imports/stock", methods=["GET", "POST"])
def stock():
    form = StockUploadForm()
    status = 200
    if form.validate_on_submit():
        accepted = accept_upload(form, kind="stock", store_id=None)
        if accepted is not None:
            return accepted
        status = 400
    elif request.method == "POST":
        status = 400
    return render_template("imports/stock.html", form=form, history=history("stock")), status


@bp.route("/imports/stock/export")
def stock_export():
    return csv_download(stock_csv.export_csv, "stock", ".stock")


def csv_download(export_csv, name: str, back: str):
    """The CSV `export_csv(encoding)` builds, in the encoding the form asked for (cp932 by default), as the
    download `<name>-<local time>.csv`; a FileProblem goes back to the page `back` with its message."""
    encoding = request.args.get("encoding", "cp932")
    if encoding not in stock_csv.ENCODINGS:
        encoding = "cp932"
    try:
        data = export_csv(encoding)
    except FileProblem as problem:
        flash(str(problem.message), "error")
        return redirect(url_for(back))
    stamp = to_user_timezone(datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M")
    response = Response(data, mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename={name}-{stamp}.csv"
    return response
