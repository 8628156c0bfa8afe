"""受注: the order list (search, filters, bulk 出荷), one order with its lines, mails and 在庫履歴 (出荷, キャンセル,
紐付け of a 未紐付け line), and the stored order mails (受信メール) with 再読込 for those that failed.

Thin: the queries are tatenpo.orders.queries, the moves tatenpo.orders.book; a move that cannot be done is a
flash in the user's language and nothing is committed.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from tatenpo.models import InboundMail, LineStock, Listing, MailStatus, Order, OrderLine, OrderStatus, Store
from tatenpo.orders import book, queries, reading
from tatenpo.platform.extensions import db
from tatenpo.platform.web import safe_next
from tatenpo.views.tables import is_htmx, paginate

bp = Blueprint("orders", __name__)

SOURCE_LABELS = {"mail": _l("Mail"), "api": _l("API"), "webhook": _l("Webhook"), "csv": "CSV", "manual": _l("Manual")}
LINE_STOCK_LABELS = {
    LineStock.NONE.value: _l("Nothing moved"),
    LineStock.ALLOCATED.value: _l("Allocated to the order"),
    LineStock.SHIPPED.value: _l("Shipped"),
    LineStock.RELEASED.value: _l("Allocation released"),
    LineStock.RESTOCKED.value: _l("Restocked"),
}
MAIL_STATUS_LABELS = {
    MailStatus.RECEIVED.value: _l("Not read yet"),
    MailStatus.ORDER.value: _l("Order"),
    MailStatus.IGNORED.value: _l("Not an order"),
    MailStatus.FAILED.value: _l("Could not be read"),
}
def _user():
    return current_user if current_user.is_authenticated else None


def _day(name: str, errors: list[str]) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.replace("/", "-"))
    except ValueError:
        errors.append(_("“%(value)s” is not a date (use YYYY-MM-DD); showing every day.", value=raw))
        return None


def _filters() -> tuple[queries.OrderFilters, list[str]]:
    """The list's filters from the query string; a bad value is dropped with a message, never a 500."""
    errors: list[str] = []
    status = (request.args.get("status") or "").strip() or None
    if status and status not in queries.STATUSES:
        errors.append(_("Unknown status filter; showing all."))
        status = None
    filters = queries.OrderFilters(
        q=(request.args.get("q") or "").strip(),
        store=request.args.get("store", type=int),
        status=status,
        unlinked=request.args.get("unlinked") in ("1", "on", "true"),
        since=_day("since", errors),
        until=_day("until", errors),
    )
    return filters, errors


def _vary(response) -> Response:
    response = response if isinstance(response, Response) else Response(response)
    response.headers.add("Vary", "HX-Request")
    return response


@bp.route("/orders")
def index():
    filters, errors = _filters()
    statement, params = queries.order_statement(filters)
    page = paginate(statement, "orders.index", filters.as_args(), filtered=bool(filters.q), params=params)
    context = dict(page=page, filters=filters, stores=db.session.scalars(select(Store).order_by(Store.id)).all(),
                   statuses=queries.STATUSES, list_url=request.full_path)
    if is_htmx() and request.headers.get("HX-Target") == "order-table":
        return _vary(render_template("orders/_table.html", **context))
    for message in errors:
        flash(message, "error")
    return _vary(render_template("orders/index.html", **context))


@bp.route("/orders/ship", methods=["POST"])
def ship_selected():
    """出荷済みにする for the selected orders, in one transaction; the ones not in 受注 are skipped and counted."""
    back = safe_next(request.form.get("next"), url_for("orders.index"))
    ids = sorted({int(i) for i in request.form.getlist("ids") if i.isdigit()})
    if not ids:
        flash(_("Select the orders to mark shipped first."), "error")
        return redirect(back)
    received, skipped = queries.receivable(ids)
    for order in received:
        book.ship(order, user=_user())
    db.session.commit()
    if received:
        flash(_("Marked %(n)s orders shipped.", n=len(received)), "success")
    if skipped:
        flash(_("%(n)s of the selected orders were skipped: only received orders can be marked shipped.",
                n=skipped), "info" if received else "error")
    return redirect(back)


@bp.route("/orders/<int:order_id>")
def detail(order_id: int):
    order = db.get_or_404(Order, order_id)
    view = queries.order_view(order)
    # Without htmx the listing search comes back here: its results are shown under the line it was for.
    searched_line = request.args.get("line", type=int)
    typed = (request.args.get("q") or "").strip()
    found = queries.candidates(order.store_id, typed) if searched_line and typed else []
    return _vary(render_template(
        "orders/detail.html", o=order, view=view, line_stock_labels=LINE_STOCK_LABELS,
        searched_line=searched_line, typed=typed, found=found,
        mail_status_labels=MAIL_STATUS_LABELS,
        restockable=order.status == OrderStatus.SHIPPED.value,
    ))


def _act(order_id: int, action, success: str):
    """Run one move on a locked order and commit it; an OrderError is the user's message and nothing changes."""
    order = queries.locked(order_id)
    if order is None:
        abort(404)
    try:
        action(order)
    except book.OrderError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    else:
        db.session.commit()
        flash(success, "success")
    return redirect(url_for("orders.detail", order_id=order_id))


@bp.route("/orders/<int:order_id>/ship", methods=["POST"])
def ship(order_id: int):
    return _act(order_id, lambda order: book.ship(order, user=_user()), _("The order was marked shipped."))


@bp.route("/orders/<int:order_id>/cancel", methods=["POST"])
def cancel(order_id: int):
    restock = request.form.get("restock") in ("1", "on", "y")
    message = _("The order was cancelled and its units were put back into stock.") if restock else _(
        "The order was cancelled.")
    return _act(order_id, lambda order: book.cancel(order, restock=restock, user=_user()), message)


def _line(order_id: int, line_id: int) -> OrderLine:
    line = db.get_or_404(OrderLine, line_id)
    if line.order_id != order_id:
        abort(404)
    return line


@bp.route("/orders/<int:order_id>/lines/<int:line_id>/candidates")
def candidates(order_id: int, line_id: int):
    """The store's listings matching what the shop typed, each with a button that links the line to it."""
    line = _line(order_id, line_id)
    typed = (request.args.get("q") or "").strip()
    if not is_htmx():
        return redirect(url_for("orders.detail", order_id=order_id, q=typed, line=line.id) + f"#line-{line.id}")
    found = queries.candidates(line.order.store_id, typed)
    return _vary(render_template("orders/_candidates.html", line=line, found=found, typed=typed))


@bp.route("/orders/<int:order_id>/lines/<int:line_id>/link", methods=["POST"])
def link(order_id: int, line_id: int):
    if queries.locked(order_id) is None:  # one link at a time per order: a line is linked (and allocates) once
        abort(404)
    line = _line(order_id, line_id)
    listing = db.session.get(Listing, request.form.get("listing_id", type=int) or 0)
    if listing is None:
        flash(_("Choose a listing to link this line to."), "error")
        return redirect(url_for("orders.detail", order_id=order_id))
    code = listing.code
    try:
        book.link_line(line, listing, user=_user())
    except book.OrderError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    else:
        db.session.commit()
        flash(_("The line was linked to %(code)s.", code=code), "success")
    return redirect(url_for("orders.detail", order_id=order_id))


@bp.route("/orders/mails")
def mails():
    status = (request.args.get("status") or "").strip() or None
    if status and status not in queries.MAIL_STATUSES:
        flash(_("Unknown status filter; showing all."), "error")
        status = None
    statement, params = queries.mail_statement(status)
    page = paginate(statement, "orders.mails", {"status": status}, params=params)
    return _vary(render_template(
        "orders/mails.html", page=page, status=status, mail_status_labels=MAIL_STATUS_LABELS,
        orders=queries.orders_of_mails(page.items), list_url=request.full_path,
    ))


@bp.route("/orders/mails/<int:mail_id>/raw")
def raw_mail(mail_id: int):
    """The mail exactly as it arrived, as a plain-text download: never rendered as a page (its HTML stays text)."""
    mail = db.get_or_404(InboundMail, mail_id)
    return Response(mail.raw, content_type="text/plain",
                    headers={"Content-Disposition": f"attachment; filename=order-mail-{mail.id}.eml"})


@bp.route("/orders/mails/<int:mail_id>/reread", methods=["POST"])
def reread(mail_id: int):
    """再読込 of a mail that failed (after a parser fix, or once its listing exists)."""
    mail = db.get_or_404(InboundMail, mail_id)
    back = safe_next(request.form.get("next"), url_for("orders.mails"))
    if mail.status != MailStatus.FAILED.value:
        flash(_("Only a mail that failed to be read can be read again here."), "error")
        return redirect(back)
    outcome = reading.read(mail.id, again=True)
    if outcome.status == MailStatus.ORDER.value:
        flash(_("The mail was read: order %(number)s.", number=outcome.order_number), "success")
    elif outcome.status == MailStatus.IGNORED.value:
        flash(_("The mail was read: it is not an order (%(reason)s).", reason=outcome.reason), "info")
    else:
        flash(_("The mail still cannot be read: %(reason)s", reason=outcome.reason), "error")
    return redirect(back)
