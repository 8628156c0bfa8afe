"""在庫同期履歴: every push attempt with ✓ / ✗, filters, CSV export, 今すぐ同期, and drift decisions.

The table polls (htmx, every 5 s) only while something is in flight and answers HTTP 286 to stop once idle.
"""
from __future__ import annotations

import csv
import functools
import io
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import (Blueprint, Response, current_app, flash, redirect, render_template, request, stream_with_context,
                   url_for)
from flask_babel import get_locale, get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from tatenpo.models import Store
from tatenpo.platform.extensions import db
from tatenpo.stock.stock_csv import neutralise
from tatenpo.sync import queueing, readback, status
from tatenpo.views.stock import escaped_labels
from tatenpo.views.tables import is_htmx

bp = Blueprint("sync", __name__)

RESULT_CHOICES = [("", _l("All")), ("ok", _l("✓ Succeeded")), ("ng", _l("✗ Failed")), ("retry", _l("↻ Will retry"))]
STATUS_LABELS = {
    "running": _l("Running"),
    "success": _l("Succeeded"),
    "partial": _l("Partly failed"),
    "failed": _l("Failed"),
    "blocked": _l("Not started"),
}

def _stores() -> dict[int, Store]:
    """The shop's stores, read once per request: the filter, the store names of the lines and the checks of the
    ✗ lines use them (the whole page reads them with their states: status.stores_with_states)."""
    return {s.id: s for s in db.session.scalars(select(Store).order_by(Store.id))}


def _filters(stores: dict[int, Store]) -> tuple[dict, list[str]]:
    """The filters from the query string; a bad value is ignored with a message, never a 500."""
    errors = []
    values = {"store_id": None, "result": None, "day": None}
    raw_store = request.args.get("store", "").strip()
    if raw_store:
        if raw_store.isdigit() and int(raw_store) in stores:
            values["store_id"] = int(raw_store)
        else:
            errors.append(_("Unknown EC site; showing all."))
    raw_result = request.args.get("result", "").strip()
    if raw_result:
        if raw_result in status.RESULTS:
            values["result"] = raw_result
        else:
            errors.append(_("Unknown result filter; showing all."))
    raw_day = request.args.get("date", "").strip()
    if raw_day:
        try:
            values["day"] = date.fromisoformat(raw_day.replace("/", "-"))
        except ValueError:
            errors.append(_("“%(value)s” is not a date (use YYYY-MM-DD); showing every day.", value=raw_day))
    return values, errors


def history_labels() -> dict:
    """The words every history line repeats, in the user's language: translated and HTML-escaped once per
    language and process, as the product rows' labels are (views.stock.row_labels; templates/sync/_table.html
    prints them as they are, and `|format` escapes the values it is given)."""
    return _history_labels(str(get_locale()))


@functools.lru_cache(maxsize=8)
def _history_labels(locale: str) -> dict:
    return escaped_labels({
        "ok": _("Succeeded"),
        "failed": _("Failed"),
        "retry": _("will retry"),
        "reflected": _("Reflected"),
        "unreflected": _("Not reflected"),
        "checking": _("Checking…"),
        "reason": _("Reason"),
        "whole_run": _("Whole run (%(n)s items)"),
        "mall_shows": _("mall shows %(n)s"),
        "none_yet": _("No sync attempts yet."),
    })


def _checks(rows: list[status.HistoryRow], stores: dict[int, Store]) -> dict[tuple, Markup]:
    """The three troubleshooting checks (docs/FLOW.md) of each ✗ line, each with what Tatenpo could verify by
    itself — rendered once per store and hint, which is all they depend on: two hundred failures of one store
    are one block (and one look at its application), not two hundred."""
    rendered: dict[tuple, Markup] = {}
    by_line = {}
    template = None
    for row in rows:
        if row.ok:
            continue
        key = (row.store_id, row.hint)
        if key not in rendered:
            checks = status.troubleshooting(stores.get(row.store_id), row.hint)
            # The block needs only its checks and the translations (globals): drawn by the template alone,
            # without the context processors render_template runs for a page.
            template = template or current_app.jinja_env.get_template("sync/_checks.html")
            rendered[key] = Markup(template.render(checks=checks))
        by_line[(row.kind, row.id)] = rendered[key]
    return by_line


def _stamp():
    """Times as the table shows them (yyyy/MM/dd HH:mm:ss in the reader's zone): the same text as the
    `localtime` filter, without a Babel pattern per line (a fifth of the page's time at 200 lines). The zone's
    offset is a whole number of minutes (every zone's, these decades), so a UTC minute is one local minute with
    the same seconds: it is converted and formatted once, and each line adds its seconds — a CSV of a day's ✗
    has a thousand lines, each at another second."""
    zone = ZoneInfo(str(get_timezone()))  # Babel's pytz zone, as the standard library's (converts faster)
    minutes: dict = {}

    def convert(value):
        return value.replace(tzinfo=timezone.utc).astimezone(zone).strftime("%Y/%m/%d %H:%M:%S")

    def stamp(value):
        key = (value.year, value.month, value.day, value.hour, value.minute)
        start = minutes.get(key)
        if start is None:
            local = value.replace(second=0, microsecond=0, tzinfo=timezone.utc).astimezone(zone)
            whole = local.utcoffset() % timedelta(minutes=1) == timedelta(0)
            start = minutes[key] = local.strftime("%Y/%m/%d %H:%M:") if whole else ""
        return f"{start}{value.second:02d}" if start else convert(value)

    return stamp


# Lines per page: the newest fifty, then “older lines” page after page. Each line is drawn (its ✗ with the
# checks), so the page's cost follows this number, never the months of history behind it.
PAGE_LINES = 50


def _older(errors: list[str]) -> tuple | None:
    """Where the page starts (`older`, a line's place written by _place); a bad value is ignored with a
    message, the newest lines shown."""
    raw = request.args.get("older", "").strip()
    if not raw:
        return None
    at, _sep, line = raw.rpartition("~")
    try:
        if line[:1] not in ("a", "r"):
            raise ValueError(raw)
        return datetime.fromisoformat(at), line[0] == "a", int(line[1:])
    except ValueError:
        errors.append(_("“%(value)s” is not a place in the history; showing the newest lines.", value=raw))
        return None


def _place(row: status.HistoryRow) -> str:
    at, attempt, line_id = row.key
    return f"{at.isoformat()}~{'a' if attempt else 'r'}{line_id}"


def _names(stores: dict[int, Store]) -> dict[int, str]:
    return {store_id: store.name for store_id, store in stores.items()}


def _page_data(stores: dict[int, Store]):
    filters, errors = _filters(stores)
    older = _older(errors)
    rows = status.history(limit=PAGE_LINES + 1, older_than=older, names=_names(stores), **filters)
    more, rows = len(rows) > PAGE_LINES, rows[:PAGE_LINES]
    args = {k: v for k, v in request.args.items() if k != "older"}
    pages = {"older": url_for("sync.index", **args, older=_place(rows[-1])) if more else None,
             "newest": url_for("sync.index", **args) if older else None}
    return filters, errors, rows, _checks(rows, stores), pages


@bp.route("/sync")
def index():
    if is_htmx():  # the table alone: the stores' states are not drawn
        stores, states = _stores(), None
    else:
        stores, states = status.stores_with_states()
    filters, errors, rows, checks, pages = _page_data(stores)
    polling = status.in_flight()
    context = dict(rows=rows, checks=checks, polling=polling, filters=filters, stores=stores,
                   query=request.query_string.decode(), stamp=_stamp(), pages=pages, labels=history_labels())
    if is_htmx():
        response = Response(render_template("sync/_table.html", **context))
        if not polling:
            response.status_code = 286  # htmx: stop polling, the page is idle
        return response
    for message in errors:
        flash(message, "error")
    return render_template(
        "sync/index.html", result_choices=RESULT_CHOICES, states=states,
        status_labels=STATUS_LABELS, **context,
    )


@bp.route("/sync/export.csv")
def export():
    stores = _stores()
    filters, _errors = _filters(stores)
    limit = status.EXPORT_ROWS
    lines = status.export_lines(limit=limit, names=_names(stores), **filters)
    header = [_("Time"), _("EC site"), _("Listing code"), _("Product code"), _("Quantity"), _("Result"),
              _("Message"), _("Reflected"), _("Quantity on the mall")]
    # Words the lines repeat, translated once for the whole export.
    marks = {"ok": "✓", "ng": "✗", "retry": _("✗ (will retry)")}
    shown = {None: "", True: _("Reflected"), False: _("Not reflected")}
    cut_note = _("Cut at %(n)s rows: choose an EC site or a day to export the rest.", n=f"{limit:,}")
    stamp = _stamp()

    def body():
        # Streamed a chunk at a time: a 100,000-line export is never one string in memory.
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        buffer.write("\ufeff")  # UTF-8 with a BOM: Excel opens it with the Japanese intact
        writer.writerow(header)
        safe: dict = {}  # store names and messages repeat line after line: neutralised once each
        last_at, last_text = None, ""
        for count, (at, store_name, listing_code, product_code, quantity, result, message, reflected,
                    read_back_quantity, total) in enumerate(lines):
            if count == limit:
                writer.writerow([cut_note])
                break
            if at != last_at:  # a batch's lines share their time
                last_at, last_text = at, stamp(at)
            if store_name not in safe:
                safe[store_name] = neutralise(store_name or "")
            if message not in safe:
                safe[message] = neutralise(message or "")
            # Codes, store names and the malls' messages come from mall files: never let Excel run them.
            writer.writerow((
                last_text, safe[store_name],
                neutralise(listing_code) if listing_code else _("(whole run: %(n)s items)", n=total or 0),
                neutralise(product_code) if product_code else "", "" if quantity is None else quantity,
                marks[result], safe[message], shown[reflected],
                "" if read_back_quantity is None else read_back_quantity,
            ))
            if buffer.tell() > 64_000:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")

    stamp_name = datetime.now().strftime("%Y%m%d-%H%M")
    return Response(stream_with_context(body()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=sync-history-{stamp_name}.csv"})


@bp.route("/sync/stores/<int:store_id>/push", methods=["POST"])
def push_now(store_id: int):
    """今すぐ同期: queue the store's push now (the worker pushes every open entry, backoff or not)."""
    store = db.get_or_404(Store, store_id)
    try:
        queued = queueing.request_push(store.id, "manual", mall=store.mall)
    except Exception:  # Redis unreachable: say so; the schedule still holds every change
        flash(_("The sync queue cannot be reached right now. Pending changes are kept and will be pushed later."), "error")
    else:
        if queued:
            flash(_("Sync of %(store)s has started. Results appear below.", store=store.name), "success")
        else:
            flash(_("A sync of %(store)s is already queued.", store=store.name), "info")
    return redirect(url_for("sync.index", store=store.id))


@bp.route("/sync/listings/<int:listing_id>/drift", methods=["POST"])
def resolve_drift(listing_id: int):
    """The shop's choice for a listing changed on the mall: overwrite the mall, or adopt its value."""
    choice = request.form.get("choice")
    try:
        if choice == "overwrite":
            readback.overwrite_mall(listing_id)
            message = _("Tatenpo's stock will be pushed to the mall again.")
        elif choice == "adopt":
            readback.adopt_mall_value(listing_id, user=current_user if current_user.is_authenticated else None)
            message = _("The mall's stock was adopted as Tatenpo's stock.")
        else:
            raise readback.DriftError(_("Choose whether to overwrite the mall or adopt its value."))
    except (readback.DriftError, ValueError) as exc:
        db.session.rollback()
        flash(str(getattr(exc, "message", exc)), "error")
    else:
        db.session.commit()
        flash(message, "success")
    return redirect(url_for("dashboard.index"))
