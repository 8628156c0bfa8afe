"""商品・在庫: the product table (search, filters, paging, per-store sync badges), inline stock editing
(htmx edit-row), bulk edit of selected rows, and the product page with its stock history.

Every stock change goes through tatenpo.stock.inventory (kind MANUAL, the current user), then one commit.
"""
from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass, field
from typing import Optional

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import Integer, bindparam, exists, select
from sqlalchemy.orm import joinedload

from tatenpo.models import Listing, Product, StockChangeKind, StockHistory, Store
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.stock.search import matches
from tatenpo.sync import listing_state
from tatenpo.views.tables import is_htmx, paginate, safe_next, shaped, statement_for, table_filters

bp = Blueprint("stock", __name__)

# How often a row that waits for a push asks for its new state (seconds): often when one of its stores pushes
# within seconds (即時同期), gently when the push waits for the 5-minute schedule.
POLL_SECONDS = 3
POLL_SECONDS_SCHEDULED = 15

KIND_LABELS = {
    StockChangeKind.MANUAL: _l("Manual edit"),
    StockChangeKind.STOCK_CSV: _l("Stock CSV"),
    StockChangeKind.LISTING_IMPORT: _l("Listing import"),
    StockChangeKind.ORDER: _l("Order"),
    StockChangeKind.CANCELLATION: _l("Cancellation"),
    StockChangeKind.CORRECTION: _l("Correction"),
}


@bp.app_context_processor
def _stock_globals():
    return {"stock_kind_labels": KIND_LABELS, "poll_seconds": POLL_SECONDS,
            "poll_seconds_scheduled": POLL_SECONDS_SCHEDULED}


def row_labels() -> dict:
    """Every word a table row needs, in the user's language: translated once per language and process rather
    than once per row."""
    return _row_labels(str(get_locale()))


@functools.lru_cache(maxsize=8)
def _row_labels(locale: str) -> dict:
    return {
        "select": _("Select %(code)s"),
        "edit": _("Edit the stock"),
        "edit_aria": _("Edit the stock of %(code)s: %(n)s"),
        "no_listings": _("No listings"),
        "not_managed": _("Stock not managed"),
        "unlinked": _("Unlinked"),
        "reflected": _("Reflected"),
        "states": {
            listing_state.PENDING: _("Waiting to sync"),
            listing_state.FAILED: "✗ " + _("Failed"),
            listing_state.UNREFLECTED: _("Not yet reflected"),
            listing_state.OK: "✓",
            listing_state.NEVER: _("Not synced yet"),
            listing_state.OFF: _("Not synced"),
        },
    }


def change_stock(product_id: int, typed: str, note: str | None = None):
    """A stock typed by the shop: “12” sets 在庫数 to 12, “+5” / “-3” adjusts it. Raises StockError."""
    text = unicodedata.normalize("NFKC", typed or "").strip()
    user = current_user._get_current_object()
    if text[:1] in "+-" and text[:1] != "":
        return inventory.adjust_stock(product_id, text, kind=StockChangeKind.MANUAL, user=user, note=note)
    return inventory.set_stock(product_id, text, kind=StockChangeKind.MANUAL, user=user, note=note)


@dataclass(slots=True)
class ProductRow:
    """One row of the product table: a product's stock, read as plain columns, and where each of its listings
    stands with its mall (listing_state.ListingBadge, store by store)."""

    id: int
    code: str
    name: str
    on_hand: int
    allocated: int
    stock_managed: bool
    states: list = field(default_factory=list)

    COLUMNS = (Product.id, Product.code, Product.name, Product.on_hand, Product.allocated, Product.stock_managed)

    sellable = Product.sellable  # the model's own rule (販売可能数), over the same two columns

    @property
    def poll_seconds(self) -> Optional[int]:
        """How often the row asks for its new state while a listing waits for a push; None when none waits."""
        waiting = [s for s in self.states if s.state == listing_state.PENDING]
        if not waiting:
            return None
        return POLL_SECONDS if any(s.listing.store.immediate_sync for s in waiting) else POLL_SECONDS_SCHEDULED


def product_rows(statement, params: dict) -> list[ProductRow]:
    """The rows of a select of ProductRow.COLUMNS (ordered by code), run with `params`, each with the state
    of its listings, store by store: one statement. The select is one built once (a shape's page, or
    _ONE_PRODUCT): the statement around it is kept per select."""
    rows: dict[int, ProductRow] = {}
    stores: dict = {}
    width = len(ProductRow.COLUMNS)
    # Plain columns: Core execution, without the ORM's result machinery (a page reads, nothing is pending).
    for columns in db.session.connection().execute(_with_states(statement), params):
        row = rows.get(columns[0])
        if row is None:
            row = rows[columns[0]] = ProductRow(*columns[:width])
        state = listing_state.read_state(columns[width:], stores)
        if state is not None:
            row.states.append(state)
    return list(rows.values())


@functools.lru_cache(maxsize=128)
def _with_states(statement):
    products = statement.subquery()
    return listing_state.with_states(products).order_by(products.c.code, Listing.store_id, Listing.id)


@statement_for
def _statement(search: bool, by_store: bool, link: str | None, state: str | None):
    statement = select(*ProductRow.COLUMNS).order_by(Product.code)
    if search:
        statement = statement.where(matches(Product.search_text))
    listing_of_product = [Listing.product_id == Product.id]
    if by_store:
        listing_of_product.append(Listing.store_id == bindparam("store_id", type_=Integer()))
    if state:
        listing_of_product.append(listing_state.condition(state))
    if by_store or state or link == "linked":
        statement = statement.where(exists().where(*listing_of_product))
    elif link == "unlinked":
        statement = statement.where(~exists().where(Listing.product_id == Product.id))
    return statement


_ONE_PRODUCT = select(*ProductRow.COLUMNS).where(Product.id == bindparam("product_id", type_=Integer()))


@bp.route("/products")
def index():
    filters = table_filters()
    statement, params = shaped(_statement, filters)
    page = paginate(statement, "stock.index", filters, filtered=any(filters.values()), load=product_rows, params=params)
    context = dict(
        page=page, filters=filters, list_url=request.full_path, labels=row_labels(), base=url_for("stock.index"),
    )
    if is_htmx() and request.headers.get("HX-Target") == "product-table":
        return render_template("stock/_table.html", **context)
    # The store filter's choices: only the whole page has them (typing a search redraws the table alone).
    stores = db.session.execute(select(Store.id, Store.name).order_by(Store.id)).all()
    return render_template("stock/index.html", stores=stores, **context)


def _product(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        abort(404)
    return product


def _product_row(product_id: int) -> ProductRow:
    rows = product_rows(_ONE_PRODUCT, {"product_id": product_id})
    if not rows:
        abort(404)
    return rows[0]


def render_row(product: ProductRow, error: str | None = None, editing: bool = False, value: str | None = None):
    return render_template(
        "stock/_row.html",
        p=product,
        editing=editing,
        error=error,
        value=value,
        labels=row_labels(),
        base=url_for("stock.index"),
    )


@bp.route("/products/<int:product_id>/row")
def row(product_id: int):
    return render_row(_product_row(product_id))


@bp.route("/products/<int:product_id>/stock/edit")
def edit(product_id: int):
    product = _product_row(product_id)
    if not is_htmx():
        return redirect(url_for("stock.detail", product_id=product.id) + "#stock")
    return render_row(product, editing=True)


def save_typed_stock(product_id: int, code, rerender, back: str):
    """The inline save shared by the product and listing rows: apply the typed stock and commit, then the row
    again (htmx) or a redirect with a message (no JavaScript). A refused number changes nothing and comes
    back in the edit row with the reason; `rerender(**row_state)` draws the row from fresh data, `code()`
    gives the product code for the message (only the messages need it, so the htmx save does not ask)."""
    typed = request.form.get("on_hand", "")
    try:
        change_stock(product_id, typed, note=(request.form.get("note") or "").strip() or None)
    except inventory.StockError as exc:
        db.session.rollback()
        if is_htmx():
            return rerender(error=str(exc.message), editing=True, value=typed)
        flash(_("%(code)s: %(message)s", code=code(), message=exc.message), "error")
        return redirect(back)
    # Settle the language now: the commit expires every loaded object, the user too, and reading its
    # language while drawing the row would cost one more query.
    get_locale()
    db.session.commit()
    db.session.expire_all()
    if is_htmx():
        return rerender()
    flash(_("Saved the stock of %(code)s.", code=code()), "success")
    return redirect(back)


@bp.route("/products/<int:product_id>/stock", methods=["POST"])
def save(product_id: int):
    # An unknown product is a 404 either way: inventory refuses to change it, then drawing the row (or the
    # message's code) finds nothing.
    back = safe_next(request.form.get("next"), url_for("stock.detail", product_id=product_id))
    return save_typed_stock(
        product_id, lambda: _product(product_id).code,
        lambda **row_state: render_row(_product_row(product_id), **row_state), back,
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
    product = _product(product_id)
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
    pushed = {listing.id: inventory.pushed_quantity(listing, product, listing.store) for listing in listings}
    return render_template(
        "stock/detail.html",
        p=product,
        listings=listings,
        states=states,
        pushed=pushed,
        history=history,
        chart=history_chart(list(reversed(history))),
        labels=row_labels(),
    )
