"""The product table as the 商品・在庫 page shows it: which products a shape of filters selects, and each row
read as plain columns with where every listing of the product stands with its mall — one statement per page.

The statements are built once per shape of filters (views.tables.statement_for) and run with their values as
parameters; a page of fifty rows and their hundreds of listings is a single query.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import Integer, bindparam, exists, select
from sqlalchemy.orm import aliased

from tatenpo.models import Listing, Product
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.stock.search import FEW, matches
from tatenpo.sync import listing_state

# How often a row that waits for a push asks for its new state (seconds): often when one of its stores pushes
# within seconds (即時同期), gently when the push waits for the 5-minute schedule.
POLL_SECONDS = 3
POLL_SECONDS_SCHEDULED = 15


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
    is_set: bool  # セット商品: its stock is its parts', shown but not edited here
    sellable: int  # 販売可能数 by the rules (a set's from its parts), computed in the same statement
    states: list = field(default_factory=list)

    COLUMNS = (Product.id, Product.code, Product.name, Product.on_hand, Product.allocated, Product.stock_managed,
               Product.is_set, inventory.product_sellable_sql().label("sellable"))

    @property
    def poll_seconds(self) -> Optional[int]:
        """How often the row asks for its new state while a listing waits for a push; None when none waits."""
        waiting = [s for s in self.states if s.state == listing_state.PENDING]
        if not waiting:
            return None
        return POLL_SECONDS if any(s.listing.store.immediate_sync for s in waiting) else POLL_SECONDS_SCHEDULED


def poll_seconds(immediate_sync: bool) -> int:
    """How often a row waiting for a push to a store asks for its new state."""
    return POLL_SECONDS if immediate_sync else POLL_SECONDS_SCHEDULED


def product_rows(statement, params: dict) -> list[ProductRow]:
    """The rows of a select of ProductRow.COLUMNS (ordered by code), run with `params`, each with the state
    of its listings, store by store: one statement. The select is one built once (a shape's page, or
    ONE_PRODUCT): the statement around it is kept per select."""
    rows: dict[int, ProductRow] = {}
    stores: dict = {}
    width = len(ProductRow.COLUMNS)
    # Plain columns: Core execution, without the ORM's result machinery (a page reads, nothing is pending).
    connection = db.session.connection()
    for columns in connection.execute(_with_states(statement, connection.dialect.name == "sqlite"), params):
        row = rows.get(columns[0])
        if row is None:
            row = rows[columns[0]] = ProductRow(*columns[:width])
        state = listing_state.read_state(columns[width:], stores)
        if state is not None:
            row.states.append(state)
    return list(rows.values())


def product_row(product_id: int) -> Optional[ProductRow]:
    """One product's row (a row redrawn after a save or while it polls); None when the product is gone."""
    rows = product_rows(ONE_PRODUCT, {"product_id": product_id})
    return rows[0] if rows else None


@functools.lru_cache(maxsize=128)
def _with_states(statement, ids_first: bool):
    # SQLite: the page's ids first, then their rows. The ids of a search tested row by row then come from an
    # index alone (search.PRODUCTS_BY_CODE), and the table and the 販売可能数 are read for the page's fifty
    # rows only, not for every row passed over on the way to page 40 (0.9 ms less there). PostgreSQL keeps
    # the plain form: it plans the nested form 1–2 ms longer than that saves.
    if ids_first:
        page = statement.with_only_columns(Product.id).scalar_subquery()
        statement = select(*ProductRow.COLUMNS).where(Product.id.in_(page))
    products = statement.subquery()
    return listing_state.with_states(products).order_by(products.c.code, Listing.store_id, Listing.id)


def statement(search: str | None, by_store: bool, link: str | None, state: str | None):
    """The products of one shape of the table's filters (which are set, not their values), by code: a search
    (`q_text`/`q_like`/`q_phrase`; search.FEW or MANY, as search.plan says), a store (`store_id`), linked or
    not, a listing in a sync state."""
    products = select(*ProductRow.COLUMNS).order_by(Product.code)
    if search:
        products = products.where(matches(Product.search_text, indexed=search == FEW))
    of_store = [Listing.store_id == bindparam("store_id", type_=Integer())] if by_store else []
    if state:
        # The listings in that state first, then their products: the ✗ ones are few and marked in a partial
        # index (ix_listings_push_failed), the waiting ones are the schedule's entries — testing every product
        # for such a listing read the whole catalog when there were none. The listing's product is joined (an
        # alias: the products around are the page's) for the badge's 在庫管理しない.
        product = aliased(Product)
        in_state = (select(Listing.product_id).join(product, product.id == Listing.product_id)
                    .where(listing_state.condition(state, managed=product.stock_managed), *of_store))
        products = products.where(Product.id.in_(in_state))
    elif by_store or link == "linked":
        products = products.where(exists().where(Listing.product_id == Product.id, *of_store))
    elif link == "unlinked":
        products = products.where(~exists().where(Listing.product_id == Product.id))
    return products


ONE_PRODUCT = select(*ProductRow.COLUMNS).where(Product.id == bindparam("product_id", type_=Integer()))
