"""販売データ: every listing of every store, with search, filters, paging, its sync state, and the stock of its
linked product editable in place (step 6 of the guide: 販売データへ在庫数を入力)."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import joinedload

from tatenpo.models import Listing, Store
from tatenpo.platform.extensions import db
from tatenpo.platform.web import safe_next
from tatenpo.stock.search import matches
from tatenpo.sync import listing_state
from tatenpo.views.stock import StockEdit, opened_edit, row_labels, save_typed_stock
from tatenpo.views.tables import is_htmx, paginate, shaped, statement_for, table_filters

bp = Blueprint("listings", __name__)

UNLINKED_URL = "/imports/unlinked"  # the 未紐付け list of the import screens


@statement_for
def _statement(search: bool, by_store: bool, link: str | None, state: str | None):
    statement = (
        select(Listing)
        .options(joinedload(Listing.store), joinedload(Listing.product))
        .order_by(Listing.store_id, Listing.code, Listing.id)
    )
    if search:
        statement = statement.where(matches(Listing.search_text))
    if by_store:
        statement = statement.where(Listing.store_id == bindparam("store_id", type_=Integer()))
    if link == "linked":
        statement = statement.where(Listing.product_id.is_not(None))
    elif link == "unlinked":
        statement = statement.where(Listing.product_id.is_(None))
    if state:
        statement = statement.where(listing_state.condition(state))
    return statement


@bp.route("/listings")
def index():
    filters = table_filters()
    statement, params = shaped(_statement, filters)
    page = paginate(statement, "listings.index", filters, filtered=any(filters.values()), params=params)
    stores = db.session.scalars(select(Store).order_by(Store.id)).all()
    context = dict(
        page=page, filters=filters, stores=stores, states=listing_state.states(page.items),
        list_url=request.full_path, unlinked_url=UNLINKED_URL, labels=row_labels(), base=url_for("listings.index"),
        products_base=url_for("stock.index"),
    )
    if is_htmx() and request.headers.get("HX-Target") == "listing-table":
        return render_template("listings/_table.html", **context)
    return render_template("listings/index.html", **context)


def _listing(listing_id: int) -> Listing:
    return db.get_or_404(Listing, listing_id, options=[joinedload(Listing.store), joinedload(Listing.product)])


def render_row(listing: Listing, edit: StockEdit | None = None):
    return render_template(
        "listings/_row.html", l=listing, s=listing_state.states([listing])[listing.id], edit=edit,
        unlinked_url=UNLINKED_URL, labels=row_labels(), base=url_for("listings.index"),
        products_base=url_for("stock.index"),
    )


@bp.route("/listings/<int:listing_id>/row")
def row(listing_id: int):
    return render_row(_listing(listing_id))


@bp.route("/listings/<int:listing_id>/stock/edit")
def edit(listing_id: int):
    listing = _listing(listing_id)
    if listing.product is None:
        abort(404)
    if not is_htmx():
        return redirect(url_for("stock.detail", product_id=listing.product_id) + "#stock")
    return render_row(listing, opened_edit(listing.product, url_for("listings.index")))


@bp.route("/listings/<int:listing_id>/stock", methods=["POST"])
def save(listing_id: int):
    listing = _listing(listing_id)
    if listing.product is None:
        abort(404)
    back = safe_next(request.form.get("next"), url_for("listings.index"))
    code = listing.product.code
    return save_typed_stock(
        listing.product_id, lambda: code, lambda edit: render_row(_listing(listing_id), edit), back
    )
