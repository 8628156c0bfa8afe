"""受注 as the screens and the shell read them: the order list with its search and filters, one order with the
mails and 在庫履歴 around it, the stored mails, and what the top page counts (売り越し and its orders,
未紐付け lines, mails that failed, order-mail routes that fell silent). Reads only; the moves are in book.py.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import DateTime, Integer, String, bindparam, exists, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from tatenpo.models import (
    InboundMail,
    LineStock,
    Listing,
    MailStatus,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    StockHistory,
    Store,
    utcnow,
)
from tatenpo.platform.extensions import db
from tatenpo.stock import rules
from tatenpo.stock.search import matches, search_params
from tatenpo.sync.status import local_day_bounds

STATUSES = tuple(status.value for status in OrderStatus)
MAIL_STATUSES = tuple(status.value for status in MailStatus)


@dataclass(frozen=True)
class OrderFilters:
    """What the shop narrowed the 受注 list to; dates are calendar days in the shop's zone."""

    q: str = ""
    store: int | None = None
    status: str | None = None
    unlinked: bool = False
    since: date | None = None
    until: date | None = None

    @property
    def any(self) -> bool:
        return bool(self.q or self.store or self.status or self.unlinked or self.since or self.until)

    def as_args(self) -> dict:
        """The filters as query-string arguments (the pager keeps them in every link)."""
        return {"q": self.q, "store": self.store, "status": self.status, "unlinked": 1 if self.unlinked else None,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None}


def waiting_to_link():
    """未紐付け: an order with a line no listing matched that still waits for one (a cancelled order waits for
    nothing, so it is left out)."""
    return (Order.status != OrderStatus.CANCELLED.value) & exists().where(
        OrderLine.order_id == Order.id, OrderLine.listing_id.is_(None))


# Built once per shape of filters (which are set, not their values), like the other big tables.
@functools.lru_cache(maxsize=64)
def _order_statement(search: bool, by_store: bool, by_status: bool, unlinked: bool, since: bool, until: bool):
    statement = (
        select(Order)
        .options(joinedload(Order.store), selectinload(Order.lines))
        .order_by(Order.received_at.desc(), Order.id.desc())
    )
    if search:
        statement = statement.where(matches(Order.search_text))
    if by_store:
        statement = statement.where(Order.store_id == bindparam("store_id", type_=Integer()))
    if by_status:
        statement = statement.where(Order.status == bindparam("status", type_=String()))
    if unlinked:
        statement = statement.where(waiting_to_link())
    if since:
        statement = statement.where(Order.received_at >= bindparam("since", type_=DateTime()))
    if until:
        statement = statement.where(Order.received_at < bindparam("until", type_=DateTime()))
    return statement


def order_statement(filters: OrderFilters) -> tuple:
    """The list's statement for these filters (built once per shape) and the parameters carrying their values."""
    params: dict = search_params(filters.q) if filters.q else {}
    if filters.store:
        params["store_id"] = filters.store
    if filters.status:
        params["status"] = filters.status
    if filters.since:
        params["since"] = local_day_bounds(filters.since)[0]
    if filters.until:
        params["until"] = local_day_bounds(filters.until)[1]
    shape = (bool(filters.q), bool(filters.store), bool(filters.status), filters.unlinked, bool(filters.since),
             bool(filters.until))
    return _order_statement(*shape), params


def orders(filters: OrderFilters, limit: int = 200) -> list[Order]:
    """The newest orders matching the filters (the shell's list)."""
    statement, params = order_statement(filters)
    return list(db.session.scalars(statement.limit(limit), params).unique())


def with_number(number: str, store_id: int | None = None) -> list[Order]:
    """Every order with this 受注番号 (one per store at most), in the given store only when one is named."""
    statement = select(Order).where(Order.number == number.strip()).order_by(Order.store_id)
    if store_id is not None:
        statement = statement.where(Order.store_id == store_id)
    return list(db.session.scalars(statement))


def locked(order_id: int) -> Order | None:
    """The order, its row locked until the commit: two clicks on 出荷済みにする move stock once."""
    return db.session.get(Order, order_id, with_for_update=True, populate_existing=True)


def receivable(order_ids: list[int]) -> tuple[list[Order], int]:
    """For a bulk 出荷: the selected orders still in 受注 (locked), and how many of the selection are not."""
    chosen = list(db.session.scalars(
        select(Order).where(Order.id.in_(order_ids)).order_by(Order.id).with_for_update()
        .execution_options(populate_existing=True)))
    received = [order for order in chosen if order.status == OrderStatus.RECEIVED.value]
    return received, len(order_ids) - len(received)


@dataclass
class OrderView:
    """One order with what surrounds it: the mails it came in, the 在庫履歴 it caused."""

    order: Order
    mails: list[InboundMail]
    history: list[StockHistory]


def order_view(order: Order) -> OrderView:
    mails = list(db.session.scalars(
        select(InboundMail).where(InboundMail.order_id == order.id).order_by(InboundMail.received_at, InboundMail.id)))
    history = list(db.session.scalars(
        select(StockHistory).options(joinedload(StockHistory.user))
        .where(StockHistory.order_id == order.id).order_by(StockHistory.id)))
    return OrderView(order, mails, history)


def candidates(store_id: int, typed: str, limit: int = 20) -> list[Listing]:
    """Listings of the order's store a 未紐付け line could be, by what the shop typed (code, SKU, title)."""
    if not typed.strip():
        return []
    return list(db.session.scalars(
        select(Listing).options(joinedload(Listing.product))
        .where(Listing.store_id == store_id, matches(Listing.search_text, typed))
        .order_by(Listing.product_id.is_(None), Listing.code, Listing.id).limit(limit)))


@functools.lru_cache(maxsize=4)
def _mail_statement(by_status: bool):
    statement = select(InboundMail).options(joinedload(InboundMail.store)).order_by(
        InboundMail.received_at.desc(), InboundMail.id.desc())
    if by_status:
        statement = statement.where(InboundMail.status == bindparam("status", type_=String()))
    return statement


def mail_statement(status: str | None) -> tuple:
    """The stored mails, newest first, of one status or all; with the parameters of the statement."""
    return _mail_statement(bool(status)), ({"status": status} if status else {})


def orders_of_mails(mails: list[InboundMail]) -> dict[int, Order]:
    ids = {mail.order_id for mail in mails if mail.order_id}
    if not ids:
        return {}
    return {order.id: order for order in db.session.scalars(select(Order).where(Order.id.in_(ids)))}


# --- The top page -----------------------------------------------------------------------------------------

@dataclass
class Oversold:
    """売り越し: a product sold beyond its stock, and the orders whose allocation took it below zero."""

    product: Product
    orders: list[Order] = field(default_factory=list)


def oversold(limit: int = 50) -> list[Oversold]:
    products = list(db.session.scalars(
        select(Product).where(rules.sellable_sql(Product.on_hand, Product.allocated) < 0)
        .order_by(rules.sellable_sql(Product.on_hand, Product.allocated), Product.code).limit(limit)))
    if not products:
        return []
    found = {product.id: Oversold(product) for product in products}
    rows = db.session.execute(
        select(OrderLine.product_id, Order)
        .join(Order, Order.id == OrderLine.order_id)
        .options(joinedload(Order.store))
        .where(OrderLine.product_id.in_(found), OrderLine.stock == LineStock.ALLOCATED.value)
        .order_by(Order.received_at, Order.id)
    )
    seen: set[tuple[int, int]] = set()
    for product_id, order in rows:
        if (product_id, order.id) not in seen:
            seen.add((product_id, order.id))
            found[product_id].orders.append(order)
    return list(found.values())


def unlinked_line_count() -> int:
    """未紐付けの受注明細 still waiting (lines of orders that are not cancelled)."""
    return db.session.scalar(
        select(func.count()).select_from(OrderLine).join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.listing_id.is_(None), Order.status != OrderStatus.CANCELLED.value)) or 0


def failed_mail_count() -> int:
    return db.session.scalar(
        select(func.count()).select_from(InboundMail).where(InboundMail.status == MailStatus.FAILED.value)) or 0


@dataclass
class MailRoute:
    """A store's order-mail route as the top page shows it."""

    store: Store
    last_mail_at: datetime | None
    sold: bool  # it has orders, or pushes stock to its mall: order mails are to be expected
    silent: bool  # sold, yet no mail for ORDER_MAIL_SILENCE_DAYS


def silence_days() -> int:
    return int(current_app.config.get("ORDER_MAIL_SILENCE_DAYS", 3))


def mail_routes(now: datetime | None = None) -> list[MailRoute]:
    """Every store with an issued order-mail address, with its last order mail. A store that sells but got no
    mail for ORDER_MAIL_SILENCE_DAYS (counted from its creation when none ever came) is silent: the mall's
    sending setting is the usual cause."""
    cutoff = (now or utcnow()) - timedelta(days=silence_days())
    has_orders = exists().where(Order.store_id == Store.id)
    has_pushes = exists().where(Listing.store_id == Store.id, Listing.last_pushed_at.is_not(None))
    rows = db.session.execute(
        select(Store, or_(has_orders, has_pushes))
        .where(Store.order_mail_address.is_not(None), Store.order_mail_address != "")
        .order_by(Store.id))
    routes = []
    for store, sold in rows:
        since = store.last_order_mail_at or store.created_at
        routes.append(MailRoute(store, store.last_order_mail_at, bool(sold), bool(sold) and since < cutoff))
    return routes
