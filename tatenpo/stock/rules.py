"""The stock rules, each defined once: in Python for one product or listing, and beside it as the SQL
expression for statements over many rows. A test holds the two forms to the same answers.

- 販売可能数 (sellable) = 在庫数 − 引当数. A sale taken beyond the stock (売り越し) makes it negative, and the
  pages show it so; what is pushed to a mall is never negative.
- A listing is pushed when it is linked to a product, its sync is on, its product is 在庫管理する, and its
  store's 自動在庫同期 is 使用中.
- The quantity pushed is 販売可能数 − the store's 保留在庫, at least 0, at most the listing's maximum.

A leaf module: it knows column expressions, not models, so models.py can use it too.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, case, literal


def sellable(on_hand: int, allocated: int) -> int:
    """販売可能数: 在庫数 − 引当数, negative when more is sold than is in stock."""
    return on_hand - allocated


def sellable_sql(on_hand: SQLColumnExpression[int], allocated: SQLColumnExpression[int]) -> ColumnElement[int]:
    """`sellable` as SQL, e.g. sellable_sql(Product.on_hand, Product.allocated)."""
    return on_hand - allocated


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
