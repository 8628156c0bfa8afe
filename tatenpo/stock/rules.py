"""The stock rules, each defined once: in Python for one product or listing, and beside it as the SQL
expression for statements over many rows. A test holds the two forms to the same answers.

- 販売可能数 (sellable) = 在庫数 − 引当数. A sale taken beyond the stock (売り越し) makes it negative, and the
  pages show it so; what is pushed to a mall is never negative.
- A セット商品 (set) holds no stock: its 販売可能数 = the least, over its parts, of floor(the part's 販売可能数 ÷
  the part's quantity in one set). A pack of three of one product is a set of one part ×3.
- A listing is pushed when it is linked to a product, its sync is on, its product is 在庫管理する, and its
  store's 自動在庫同期 is 使用中.
- The quantity pushed is 販売可能数 − the store's 保留在庫, at least 0, at most the listing's maximum.

A leaf module: it knows column expressions, not models, so models.py can use it too.
"""
from __future__ import annotations

from typing import Optional

from collections.abc import Iterable

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, case, func, literal, select


def sellable(on_hand: int, allocated: int) -> int:
    """販売可能数: 在庫数 − 引当数, negative when more is sold than is in stock."""
    return on_hand - allocated


def sellable_sql(on_hand: SQLColumnExpression[int], allocated: SQLColumnExpression[int]) -> ColumnElement[int]:
    """`sellable` as SQL, e.g. sellable_sql(Product.on_hand, Product.allocated)."""
    return on_hand - allocated


def set_sellable(parts: Iterable[tuple[int, int]]) -> int:
    """A set's 販売可能数 from (part's 販売可能数, quantity per set) pairs: the fewest whole sets any part allows.
    Floor division, so an oversold part (negative) makes the set negative too; a set without parts has 0."""
    return min((sellable // quantity for sellable, quantity in parts), default=0)


def floor_div_sql(numerator: SQLColumnExpression[int], denominator: SQLColumnExpression[int]) -> ColumnElement[int]:
    """Python's // for integers (denominator > 0): SQLite and PostgreSQL truncate towards zero, so a negative
    numerator is rounded down by hand. (`//` is SQLAlchemy's integer division: `/` would divide as decimals.)"""
    return case(
        (numerator >= 0, numerator // denominator),
        else_=-((denominator - 1 - numerator) // denominator),
    )


def set_sellable_aggregate_sql(
    part_sellable: SQLColumnExpression[int], quantity: SQLColumnExpression[int]
) -> ColumnElement[int]:
    """`set_sellable` as an aggregate over the rows of one set's parts (NULL for none: see set_sellable_sql),
    for a statement that groups parts by their set."""
    return func.min(floor_div_sql(part_sellable, quantity))


def set_sellable_sql(
    part_sellable: SQLColumnExpression[int], quantity: SQLColumnExpression[int], *where: ColumnElement[bool]
) -> ColumnElement[int]:
    """`set_sellable` as a scalar subquery over the set's parts: `part_sellable` and `quantity` are columns of
    the tables the caller joins, `where` picks one set's parts (correlated to the outer product row)."""
    least = select(set_sellable_aggregate_sql(part_sellable, quantity)).where(*where).scalar_subquery()
    return func.coalesce(least, 0)


def product_sellable_sql(
    is_set: SQLColumnExpression[bool], own_sellable: SQLColumnExpression[int], set_sellable: ColumnElement[int]
) -> ColumnElement[int]:
    """A product's 販売可能数 whatever it is: a set's from its parts (`set_sellable_sql`), else its own."""
    return case((is_set.is_(True), set_sellable), else_=own_sellable)


def is_pushed(linked: bool, sync_enabled: bool, stock_managed: bool, auto_sync: bool) -> bool:
    """Whether a listing's stock is pushed to its mall."""
    return linked and sync_enabled and stock_managed and auto_sync


def is_pushed_sql(
    product_id: SQLColumnExpression[Optional[int]],
    sync_enabled: SQLColumnExpression[bool],
    stock_managed: SQLColumnExpression[bool],
    auto_sync: SQLColumnExpression[bool],
) -> ColumnElement[bool]:
    """`is_pushed` as SQL over the listing's product_id (linked: not NULL) and the three flags. A NULL flag
    (a product or store missing from an outer join) counts as off."""
    return and_(
        product_id.is_not(None), sync_enabled.is_(True), stock_managed.is_(True), auto_sync.is_(True)
    )


def quantity_to_push(sellable: int, safety_stock: int, max_quantity: Optional[int]) -> int:
    """What the mall is sent: 販売可能数 − 保留在庫, never below 0, capped by the listing's maximum (None: no cap)."""
    quantity = max(0, sellable - safety_stock)
    return quantity if max_quantity is None else min(quantity, max_quantity)


def quantity_to_push_sql(
    sellable: SQLColumnExpression[int],
    safety_stock: SQLColumnExpression[int],
    max_quantity: SQLColumnExpression[Optional[int]],
) -> ColumnElement[int]:
    """`quantity_to_push` as SQL. CASE rather than MAX/GREATEST: SQLite and PostgreSQL spell those apart."""
    kept_back = sellable - safety_stock
    quantity = case((kept_back > 0, kept_back), else_=literal(0))
    return case((and_(max_quantity.is_not(None), max_quantity < quantity), max_quantity), else_=quantity)
