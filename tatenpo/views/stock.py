"""商品・在庫: the product table (search, filters, paging, per-store sync badges), inline stock editing
(htmx edit-row), bulk edit of selected rows, and the product page with its stock history and, for a セット商品,
its parts (「セット商品にする」: tatenpo.stock.sets).

Every stock change goes through tatenpo.stock.inventory (kind MANUAL, the current user), then one commit.
The table's queries and rows are tatenpo.stock.table; the rows' markup is drawn here (product_rows, sync_badges,
stock_link: the hot part of a 50-row page) and in templates/_rows.html (the edit form, a set's cell, the listing
rows), each piece in one place.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from tatenpo.models import Listing, Product, StockChangeKind, StockHistory, Store
from tatenpo.platform.extensions import db
from tatenpo.platform.web import number, safe_next
from tatenpo.stock import inventory, search, sets, table
from tatenpo.sync import listing_state
from tatenpo.views.tables import is_htmx, paginate, shaped, statement_for, table_filters

bp = Blueprint("stock", __name__)

_statement = statement_for(table.statement)


def row_labels() -> dict:
    """Every word a table row needs, in the user's language: translated and HTML-escaped once per language and
    process rather than once per row (Markup: the rows print them as they are, and `|format` escapes the
    values it is given; templates/_rows.html)."""
    return _row_labels(str(get_locale()))


@functools.lru_cache(maxsize=8)
def _row_labels(locale: str) -> dict:
    return escaped_labels(_row_words())


def escaped_labels(words):
    """Translated labels (a dict of them, nested or not) HTML-escaped once, those with %(name)s places as
    RowPattern: for the rows drawn with autoescape off (here and views.sync.history_labels)."""
    if isinstance(words, dict):
        return {key: escaped_labels(value) for key, value in words.items()}
    return RowPattern(escape(words)) if "%(" in words else escape(words)


class RowPattern(Markup):
    """An escaped label with %(name)s places, filled row after row (`labels.select|format(code=p.code)`): the
    values escaped, the pattern not again. Markup's own `%` does the same through a helper object per value,
    at several times the cost — two labels per row of a 50-row page."""

    __slots__ = ()

    def __mod__(self, values):
        if not isinstance(values, dict):
            return super().__mod__(values)
        return Markup(str.__mod__(self, {key: value if type(value) is int else escape(value)
                                         for key, value in values.items()}))


# The rows of the product table in Python. A page draws fifty rows of some thirty values each; as Jinja macros
# they cost as much as the rest of the request (each value an attribute lookup, an escape check and a call
# through Jinja's runtime), written out here a fifth of that. templates/_rows.html keeps the rest of the rows'
# markup (the edit form, a set's cell, the listing rows) and calls these for the pieces it shares with them, so
# each piece has one source. What comes from the shop or a mall is escaped here (codes, names, store names,
# mall messages); `labels` is escaped once per language (row_labels); the rest is numbers, fixed words and the
# escaped table address. tests/test_stock_pages.py checks that a product's, a store's and a mall message's
# markup comes out escaped.

def sync_badges(states, labels) -> Markup:
    """The sync badges of a row's listings (listing_state.ListingBadge), one per listing, a space after each:
    the store and where its stock stands; none: "No listings"."""
    return Markup(_badges(states, labels, {}))


def _badges(states, labels, names: dict) -> str:
    if not states:
        return f'<span class="muted">{labels["no_listings"]}</span>'
    words, parts = labels["states"], []
    for badge in states:
        listing, state = badge.listing, badge.state
        name = names.get(listing.store_id)
        if name is None:  # once per store and page, not per badge
            name = names[listing.store_id] = escape(listing.store.name)
        message = f" — {escape(badge.message)}" if badge.message else ""
        reflected = f" {labels['reflected']}" if state == listing_state.OK and listing.reflected else ""
        parts.append(
            f'<span class="badge sync sync-{state}" data-store="{listing.store_id}" data-state="{state}" '
            f'title="{name} · {escape(listing.code)}{message}"><span class="sync-store">{name}</span> '
            f'<span class="sync-state">{words[state]}{reflected}</span></span> '
        )
    return "".join(parts)


def stock_link(product, row_url, labels, link_id: str) -> Markup:
    """The 在庫数 cell's content outside editing: a link that opens the edit row (`row_url` an escaped address,
    `link_id` the id htmx keeps the focus on)."""
    return Markup(_stock_link(product.code, product.on_hand, row_url, labels, link_id))


def _stock_link(code, on_hand, row_url, labels, link_id) -> str:
    return (f'<a class="stock-edit" id="{link_id}" href="{row_url}/stock/edit" hx-get="{row_url}/stock/edit" '
            f'hx-target="closest tr" hx-swap="outerHTML" title="{labels["edit"]}" '
            f'aria-label="{labels["edit_aria"] % {"code": code, "n": on_hand}}">{number(on_hand)}</a>')


def product_rows(rows, labels, base: str, edit=None, stock_cell=None) -> Markup:
    """The rows of the product table (stock.table.ProductRow) under `base` (the table's address): the page's,
    or the one row htmx redraws. Without `edit` a row shows the stock as a link and, while a listing waits for
    its push, asks for its new state every few seconds; with `edit` (a StockEdit) its 在庫数 cell is the edit
    form, which, like a set's cell, `stock_cell` (the template's macro) draws."""
    base = escape(base)
    names: dict = {}
    drawn = []
    for p in rows:
        row_url = Markup(f"{base}/{p.id}")
        poll = None if edit else p.poll_seconds
        polling = (f' hx-get="{row_url}/row" hx-trigger="every {poll}s" hx-swap="outerHTML"' if poll else "")
        badges = (f' <span class="badge set-badge">{labels["set"]}</span>' if p.is_set else "") + (
            f' <span class="badge">{labels["not_managed"]}</span>' if not p.stock_managed else "")
        if edit is not None or p.is_set:
            cell = stock_cell(p, row_url, labels, f"product-{p.id}-stock", edit)
        else:
            cell = (f'<td class="num stock-cell">'
                    f'{_stock_link(p.code, p.on_hand, row_url, labels, f"product-{p.id}-stock")}</td>')
        drawn.append(
            f'<tr id="product-{p.id}" class="stock-row{" editing" if edit else ""}"{polling}>\n'
            f'  <td class="select"><input type="checkbox" name="ids" value="{p.id}" form="bulk-form" '
            f'class="row-select" id="select-{p.id}" hx-preserve '
            f'aria-label="{labels["select"] % {"code": p.code}}"></td>\n'
            f'  <td class="code"><a href="{row_url}">{escape(p.code)}</a></td>\n'
            f'  <td class="name">{escape(p.name)}{badges}</td>\n'
            f'  {cell}\n'
            f'  <td class="num">{number(p.allocated)}</td>\n'
            f'  <td class="num">{number(p.sellable)}</td>\n'
            f'  <td class="badges">{_badges(p.states, labels, names)}</td>\n'
            f'</tr>'
        )
    return Markup("\n".join(drawn))


def _row_words() -> dict:
    return {
        "select": _("Select %(code)s"),
        "edit": _("Edit the stock"),
        "edit_aria": _("Edit the stock of %(code)s: %(n)s"),
        "no_listings": _("No listings"),
        "not_managed": _("Stock not managed"),
        "unlinked": _("Unlinked"),
        "reflected": _("Reflected"),
        "set": _("Set product"),
        "set_hint": _("A set product has no stock of its own: change the stock of its parts."),
        "states": {
            listing_state.PENDING: _("Waiting to sync"),
            listing_state.FAILED: "✗ " + _("Failed"),
            listing_state.UNREFLECTED: _("Not yet reflected"),
            listing_state.OK: "✓",
            listing_state.NEVER: _("Not synced yet"),
            listing_state.OFF: _("Not synced"),
        },
    }


@dataclass(frozen=True, slots=True)
class StockEdit:
    """An open edit of a row's 在庫数: what the form shows (`value`), the 在庫数 it was opened on (`seen`),
    where to go after a save without JavaScript, and why the last save was refused, if it was."""

    value: str
    seen: Optional[int]
    next_url: str
    error: Optional[str] = None
    conflict: Optional[inventory.StockConflict] = None


def _seen() -> Optional[int]:
    """The 在庫数 the editor saw, from the form (absent from older pages and scripts: no check then)."""
    seen = (request.form.get("seen") or "").strip()
    return int(seen) if seen.isdigit() else None


def change_stock(product_id: int, typed: str, note: str | None = None, seen: int | None = None):
    """A stock typed by the shop: “12” sets 在庫数 to 12, “+5” / “-3” adjusts it. Raises StockError, and
    StockConflict when a set finds another 在庫数 than `seen` (a relative change is exact, it has no check)."""
    # Not NFKC: it turns ² and ① into digits nobody typed; inventory.parse_quantity reads full-width itself.
    text = (typed or "").strip()
    user = current_user._get_current_object()
    if text[:1] in ("+", "-", "＋", "－"):
        return inventory.adjust_stock(product_id, text, kind=StockChangeKind.MANUAL, user=user, note=note)
    return inventory.set_stock(product_id, text, kind=StockChangeKind.MANUAL, user=user, note=note, expected=seen)


@bp.route("/products")
def index():
    filters = table_filters()
    statement, params, counted = _shaped(filters)
    # The count stops at views.tables.COUNT_CAP on every view of the table, the unfiltered one too: counting a
    # catalogue of 100,000 products on each page view cost PostgreSQL more than drawing the page. Past the cap
    # the page says 「2,000件以上」 and its pager offers the next page rather than the last.
    page = paginate(statement, "stock.index", filters, filtered=True, load=table.product_rows, params=params,
                    counted=counted)
    context = dict(
        page=page, filters=filters, list_url=request.full_path, labels=row_labels(), base=url_for("stock.index"),
    )
    if is_htmx() and request.headers.get("HX-Target") == "product-table":
        return render_template("stock/_table.html", **context)
    # The store filter's choices: only the whole page has them (typing a search redraws the table alone).
    stores = db.session.execute(select(Store.id, Store.name).order_by(Store.id)).all()
    return render_template("stock/index.html", stores=stores, **context)


def _shaped(filters: dict) -> tuple:
    """views.tables.shaped for the product table, and the count when the search index gave it already (a
    search that is the only filter: stock.search.planned), else None."""
    if not filters["q"]:
        return (*shaped(_statement, filters), None)
    plan, found = search.planned(filters["q"], db.session.connection())
    params = search.search_params(filters["q"])
    if filters["store"]:
        params["store_id"] = filters["store"]
    statement = _statement(plan, bool(filters["store"]), filters["link"], filters["state"])
    alone = not (filters["store"] or filters["link"] or filters["state"])
    return statement, params, found if alone else None


def _product_row(product_id: int) -> table.ProductRow:
    row = table.product_row(product_id)
    if row is None:
        abort(404)
    return row


def render_row(product: table.ProductRow, edit: StockEdit | None = None):
    return render_template("stock/_row.html", p=product, edit=edit, labels=row_labels(), base=url_for("stock.index"))


@bp.route("/products/<int:product_id>/row")
def row(product_id: int):
    return render_row(_product_row(product_id))


def opened_edit(product, next_url: str) -> StockEdit:
    """The edit row as it opens: the stock shown is the stock seen."""
    return StockEdit(value=str(product.on_hand), seen=product.on_hand, next_url=next_url)


@bp.route("/products/<int:product_id>/stock/edit")
def edit(product_id: int):
    product = _product_row(product_id)
    if not is_htmx():
        return redirect(url_for("stock.detail", product_id=product.id) + "#stock")
    return render_row(product, opened_edit(product, url_for("stock.index")))


def save_typed_stock(product_id: int, code, rerender, back: str):
    """The inline save shared by the product and listing rows: apply the typed stock and commit, then the row
    again (htmx) or a redirect with a message (no JavaScript). A refused number changes nothing and comes
    back in the edit row with the reason; so does a set that another person's save overtook, the row then
    offering to apply the typed stock over theirs (without JavaScript: the product page does). `rerender(edit)`
    draws the row from fresh data, `code()` gives the product code for the message (only the messages need
    it, so the htmx save does not ask)."""
    typed = request.form.get("on_hand", "")
    seen = _seen()
    try:
        change_stock(product_id, typed, note=(request.form.get("note") or "").strip() or None, seen=seen)
    except inventory.StockError as exc:
        db.session.rollback()
        conflict = exc if isinstance(exc, inventory.StockConflict) else None
        seen = conflict.current if conflict else seen
        if is_htmx():
            return rerender(StockEdit(value=typed, seen=seen, next_url=back, error=str(exc.message),
                                      conflict=conflict))
        if conflict:
            return render_detail(db.get_or_404(Product, product_id), edit=StockEdit(
                value=typed, seen=conflict.current, next_url=back, error=str(exc.message), conflict=conflict)), 409
        flash(_("%(code)s: %(message)s", code=code(), message=exc.message), "error")
        return redirect(back)
    # Settle the language now: the commit expires every loaded object, the user too, and reading its
    # language while drawing the row would cost one more query.
    get_locale()
    db.session.commit()
    db.session.expire_all()
    if is_htmx():
        return rerender(None)
    flash(_("Saved the stock of %(code)s.", code=code()), "success")
    return redirect(back)


@bp.route("/products/<int:product_id>/stock", methods=["POST"])
def save(product_id: int):
    # An unknown product is a 404 either way: inventory refuses to change it, then drawing the row (or the
    # message's code) finds nothing.
    back = safe_next(request.form.get("next"), url_for("stock.detail", product_id=product_id))
    return save_typed_stock(
        product_id, lambda: db.get_or_404(Product, product_id).code,
        lambda edit: render_row(_product_row(product_id), edit), back,
    )


@bp.route("/products/bulk", methods=["POST"])
def bulk():
    """Apply one stock to every selected product, all or nothing."""
    back = safe_next(request.form.get("next"), url_for("stock.index"))
    ids = sorted({int(i) for i in request.form.getlist("ids") if i.isdigit()})
    typed = (request.form.get("quantity") or "").strip()
    mode = request.form.get("mode", "set")
    if not ids:
        flash(_("Select the products to change first."), "error")
        return redirect(back)
    if mode == "adjust" and typed[:1] not in ("+", "-", "＋", "－"):
        typed = "+" + typed
    # The sign in the box decides between set and adjust, so “adjust by 5” is “+5”.
    if mode == "set":
        typed = typed.lstrip("+＋")
    products = db.session.scalars(select(Product).where(Product.id.in_(ids)).order_by(Product.id)).all()
    if len(products) != len(ids):
        flash(_("Some of the selected products no longer exist. Nothing was changed."), "error")
        return redirect(back)
    for product in products:
        code = product.code
        try:
            change_stock(product.id, typed)
        except inventory.StockError as exc:
            db.session.rollback()
            flash(_("%(code)s: %(message)s Nothing was changed.", code=code, message=exc.message), "error")
            return redirect(back)
    db.session.commit()
    flash(_("Changed the stock of %(n)s products.", n=len(products)), "success")
    return redirect(back)


def history_chart(rows: list[StockHistory], width: int = 600, height: int = 120) -> dict | None:
    """A step line of 在庫数 over the given history rows (oldest first), scaled into an SVG box."""
    if not rows:
        return None
    first = rows[0]
    values = [first.quantity_after - first.change] + [r.quantity_after for r in rows]
    top = max(values) or 1
    pad = 6
    step = (width - 2 * pad) / max(1, len(values) - 1)

    def y(v: int) -> float:
        return round(height - pad - (v / top) * (height - 2 * pad), 1)

    points = []
    for i, value in enumerate(values):
        x = round(pad + i * step, 1)
        if points:
            points.append(f"{x},{points[-1].split(',')[1]}")  # hold the level until the change
        points.append(f"{x},{y(value)}")
    return {
        "width": width,
        "height": height,
        "points": " ".join(points),
        "top": top,
        "last": values[-1],
        "dots": [(round(pad + i * step, 1), y(v)) for i, v in enumerate(values)],
    }


@bp.route("/products/<int:product_id>")
def detail(product_id: int):
    return render_detail(db.get_or_404(Product, product_id))


@dataclass(frozen=True)
class SetForm:
    """The parts form of the product page as typed (code, quantity per row), with why a save was refused, or
    the question a product with stock asks before it becomes a set."""

    rows: list[tuple[str, str]]
    error: Optional[str] = None
    question: Optional[sets.StockWouldBeCleared] = None


BLANK_PART_ROWS = 3  # empty rows under the parts, for parts to add without JavaScript


def _typed_parts() -> list[tuple[str, str]]:
    codes = request.form.getlist("part_code")
    quantities = request.form.getlist("part_quantity")
    rows = [(code.strip(), quantity.strip()) for code, quantity in zip(codes, quantities)]
    return [(code, quantity) for code, quantity in rows if code or quantity]


@bp.route("/products/<int:product_id>/set", methods=["POST"])
def save_set(product_id: int):
    """Make the product a set of the typed parts, or change a set's parts. A product with stock of its own is
    asked first (its 在庫数 would be set to 0); the answer comes back with `clear_stock`."""
    product = db.get_or_404(Product, product_id)
    code = product.code
    parts = _typed_parts()
    try:
        sets.define(code, parts, user=current_user._get_current_object(),
                    clear_stock=request.form.get("clear_stock") == "1")
    except sets.StockWouldBeCleared as asked:
        db.session.rollback()
        return render_detail(db.get_or_404(Product, product_id), set_form=SetForm(parts, question=asked)), 409
    except (sets.SetError, inventory.StockError) as exc:
        db.session.rollback()
        return render_detail(db.get_or_404(Product, product_id), set_form=SetForm(parts, error=str(exc.message))), 400
    db.session.commit()
    flash(_("Saved the parts of the set %(code)s.", code=code), "success")
    return redirect(url_for("stock.detail", product_id=product_id) + "#set")


@bp.route("/products/<int:product_id>/set/dissolve", methods=["POST"])
def dissolve_set(product_id: int):
    """An ordinary product again, with no stock (entered afterwards like any product's)."""
    code = db.get_or_404(Product, product_id).code
    try:
        sets.dissolve(product_id)
    except (sets.SetError, inventory.StockError) as exc:
        db.session.rollback()
        flash(_("%(code)s: %(message)s", code=code, message=exc.message), "error")
        return redirect(url_for("stock.detail", product_id=product_id))
    db.session.commit()
    flash(_("%(code)s is an ordinary product again, with no stock.", code=code), "success")
    return redirect(url_for("stock.detail", product_id=product_id))


@bp.route("/products/set-parts")
def part_options():
    """The <option>s of ordinary products matching the typed part code (htmx, for the parts form's list)."""
    # htmx sends the typed input's own value (name part_code); q for a plain link or script.
    typed = request.args.get("part_code") or request.args.get("q") or ""
    return render_template("stock/_part_options.html", candidates=sets.part_candidates(typed))


def render_detail(product: Product, edit: StockEdit | None = None, set_form: SetForm | None = None) -> str:
    """The product page; `edit` is a refused save of its stock form (the typed stock kept, and why), `set_form`
    the parts form as typed when its save was refused or asks a question."""
    listings = db.session.scalars(
        select(Listing).options(joinedload(Listing.store)).where(Listing.product_id == product.id).order_by(Listing.store_id, Listing.id)
    ).all()
    states = listing_state.states(listings)
    history = db.session.scalars(
        select(StockHistory)
        .options(joinedload(StockHistory.user))
        .where(StockHistory.product_id == product.id)
        .order_by(StockHistory.id.desc())
        .limit(100)
    ).all()
    set_view = sets.view(product)
    pushed = {listing.id: inventory.pushed_quantity(listing, product, listing.store) for listing in listings}
    return render_template(
        "stock/detail.html",
        p=product,
        edit=edit or opened_edit(product, url_for("stock.detail", product_id=product.id)),
        listings=listings,
        states=states,
        pushed=pushed,
        history=history,
        chart=history_chart(list(reversed(history))),
        labels=row_labels(),
        set_view=set_view,
        set_form=set_form or SetForm([(p.code, str(p.quantity)) for p in (set_view.parts if set_view else [])]),
        blank_part_rows=BLANK_PART_ROWS,
        containing=sets.sets_containing(product.id),
    )
