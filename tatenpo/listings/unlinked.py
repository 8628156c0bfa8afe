"""未紐付け: listings that belong to no product yet. The shop links each to an existing product (found by
code or name) or creates the product from it. Linking schedules the listing for sync (tatenpo.stock.inventory)."""
from __future__ import annotations

from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from tatenpo.models import Listing, Product, StockChangeKind, User
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.stock.search import matches

PAGE_SIZE = 50


class LinkError(ValueError):
    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


def unlinked_listings(store_id: Optional[int] = None, query: str = "", page: int = 1):
    """(listings on this page, total count), newest first."""
    where = [Listing.product_id.is_(None)]
    if store_id:
        where.append(Listing.store_id == store_id)
    if query.strip():
        where.append(matches(Listing.search_text, query.strip()))
    total = db.session.scalar(select(func.count()).select_from(Listing).where(*where)) or 0
    rows = db.session.scalars(
        select(Listing).options(joinedload(Listing.store)).where(*where).order_by(Listing.id.desc())
        .limit(PAGE_SIZE).offset(max(0, page - 1) * PAGE_SIZE)
    ).all()
    return rows, total


def find_products(query: str, limit: int = 20) -> list[Product]:
    """Products whose 商品コード or name contains the text (width and case ignored); exact code first."""
    text = query.strip()
    if not text:
        return []
    exact = db.session.scalar(select(Product).where(Product.code == text))
    found = db.session.scalars(
        select(Product).where(matches(Product.search_text, text)).order_by(Product.code).limit(limit)
    ).all()
    if exact is not None:
        found = [exact] + [p for p in found if p.id != exact.id]
    return found[:limit]


def _unlinked(listing_id: int) -> Listing:
    listing = db.session.get(Listing, listing_id)
    if listing is None:
        raise LinkError(_l("The listing no longer exists."))
    if listing.product_id is not None:
        raise LinkError(_l("This listing is already linked to a product."))
    return listing


def link(listing_id: int, product_code: str) -> Listing:
    """Link to an existing product by its 商品コード; the caller commits."""
    listing = _unlinked(listing_id)
    product = db.session.scalar(select(Product).where(Product.code == product_code.strip()))
    if product is None:
        raise LinkError(_l("There is no product with 商品コード “%(code)s”.", code=product_code.strip()))
    listing.product = product
    db.session.flush()
    inventory.schedule([listing])
    return listing


def create_and_link(listing_id: int, code: str, name: str, on_hand, user: Optional[User] = None) -> Product:
    """Create a product from the listing (starting stock through the inventory rules) and link it."""
    listing = _unlinked(listing_id)
    code = code.strip()
    if not code:
        raise LinkError(_l("Enter a 商品コード."))
    if len(code) > 255:
        raise LinkError(_l("The 商品コード is too long (at most 255 characters)."))
    if db.session.scalar(select(Product.id).where(Product.code == code)) is not None:
        raise LinkError(_l("A product with 商品コード “%(code)s” already exists: link to it instead.", code=code))
    try:
        quantity = inventory.parse_quantity(on_hand if str(on_hand).strip() != "" else 0)
    except inventory.StockError as exc:
        raise LinkError(exc.message) from None
    product = Product(code=code, name=(name or listing.title)[:500], on_hand=0)
    product.refresh_search_text()
    db.session.add(product)
    db.session.flush()
    listing.product = product
    db.session.flush()
    if quantity:
        try:
            inventory.set_stock(product, quantity, kind=StockChangeKind.LISTING_IMPORT, user=user,
                                note=f"未紐付けから作成 {listing.code}")
        except inventory.StockError as exc:
            raise LinkError(exc.message) from None
    else:
        inventory.schedule([listing])
    return product
