"""未紐付け: the listings no product is linked to yet, searchable by store and text, each linked to an existing
product (found as the shop types) or to a new one created on the spot. Routes of the `imports` blueprint
(views/listing_import.py); the work is tatenpo.listings.unlinked."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from tatenpo.listings import unlinked
from tatenpo.models import Listing
from tatenpo.platform.extensions import db
from tatenpo.platform.web import safe_next
from tatenpo.views.forms import CreateForm, LinkForm
from tatenpo.views.listing_import import bp, stores


@bp.route("/imports/unlinked")
def unlinked_list():
    store_id = request.args.get("store", type=int)
    query = request.args.get("q", "")
    page = max(1, request.args.get("page", 1, type=int))
    rows, total = unlinked.unlinked_listings(store_id, query, page)
    return render_template(
        "imports/unlinked.html", listings=rows, total=total, page=page, page_size=unlinked.PAGE_SIZE,
        stores=stores(), store_id=store_id, query=query, link_form=LinkForm(), create_form=CreateForm(),
    )


@bp.route("/imports/unlinked/<int:listing_id>/search")
def unlinked_search(listing_id: int):
    """htmx: products matching the typed code or name, each with a button to link."""
    listing = db.get_or_404(Listing, listing_id)
    query = request.args.get("product_code") or request.args.get("q", "")
    products = unlinked.find_products(query)
    return render_template("imports/_candidates.html", listing=listing, products=products, query=query)


def _back() -> str:
    return safe_next(request.form.get("next"), url_for(".unlinked_list"))


@bp.route("/imports/unlinked/<int:listing_id>/link", methods=["POST"])
def unlinked_link(listing_id: int):
    form = LinkForm()
    if not form.validate_on_submit():
        flash(_("Enter a 商品コード."), "error")
        return redirect(_back())
    try:
        listing = unlinked.link(listing_id, form.product_code.data)
    except unlinked.LinkError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(_back())
    db.session.commit()
    flash(_("Linked %(listing)s to %(product)s.", listing=listing.code, product=listing.product.code), "success")
    return redirect(_back())


@bp.route("/imports/unlinked/<int:listing_id>/create", methods=["POST"])
def unlinked_create(listing_id: int):
    form = CreateForm()
    if not form.validate_on_submit():
        flash(_("Enter a 商品コード."), "error")
        return redirect(_back())
    try:
        product = unlinked.create_and_link(listing_id, form.code.data, form.name.data or "", form.on_hand.data or "0",
                                           user=current_user)
    except unlinked.LinkError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(_back())
    db.session.commit()
    flash(_("Created the product %(code)s and linked the listing.", code=product.code), "success")
    return redirect(_back())
