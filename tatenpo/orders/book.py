"""受注 and their stock effects: an order is kept once per store and mall order number, whichever door brought
it, and each of its lines moves stock exactly once per step:

- received → 引当数 += n (販売可能数 falls, possibly below zero: 売り越し);
- 出荷 → 在庫数 −= n and 引当数 −= n;
- cancelled before shipping → 引当数 −= n; after shipping, stock comes back only when the shop says so (再入庫).

A line that matches no listing (未紐付け) moves nothing until it is linked; linking applies what the order's
status calls for then. Every move is a 在庫履歴 row naming the order, in the caller's transaction, and
schedules the product's listings on every store — at once, whatever the stores' intervals (a sale is the most
urgent change there is). The caller commits.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Protocol

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from tatenpo.models import (
    LineStock,
    Listing,
    Order,
    OrderLine,
    OrderStatus,
    StockChangeKind,
    Store,
    User,
    search_key,
    utcnow,
)
from tatenpo.orders import matching
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory


class OrderError(ValueError):
    """An order action that cannot be done; the message is for the user, in their language."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


class PrintedLine(Protocol):
    item_code: str
    variant_code: str
    choices: Sequence[tuple[str, str]] | str
    title: str
    quantity: int
    unit_price: Optional[int]


class PrintedOrder(Protocol):
    """An order as a door read it (a mail today; an order API or CSV later)."""

    number: str
    ordered_at: Optional[datetime]
    lines: Sequence[PrintedLine]


@dataclass
class Booked:
    order: Order
    created: bool  # False: the order was known already (another mail, another door): nothing moved again


def record(store: Store, printed: PrintedOrder, *, source: str, moves_stock: bool = True) -> Booked:
    """Keep the order (once) and allocate its matched lines. A second arrival only notes its door.

    `moves_stock=False`: an order the mall fulfils from its own warehouse (Amazon FBA) — kept and shown, its
    lines matched, but it never allocates nor ships Tatenpo's stock, now or when a line is linked later."""
    existing = _find(store.id, printed.number)
    if existing is not None:
        return Booked(_seen_by(existing, source), created=False)
    matching.fill_order_codes(store.id)
    order = Order(store_id=store.id, number=printed.number, status=OrderStatus.RECEIVED.value, sources=[source],
                  ordered_at=printed.ordered_at, received_at=utcnow(), moves_stock=moves_stock)
    for position, line in enumerate(printed.lines):
        listing = matching.match(store.id, line)
        order.lines.append(OrderLine(
            position=position, item_code=line.item_code[:255], variant_code=(line.variant_code or "")[:255],
            choices=matching.choices_text(line.choices)[:500], title=(line.title or "")[:500],
            quantity=line.quantity, unit_price=line.unit_price,
            listing_id=listing.id if listing else None,
            product_id=listing.product_id if listing else None,
        ))
    order.search_text = _search_text(order)
    try:
        # A savepoint: the same order arriving through two doors at once inserts once; the other finds it.
        with db.session.begin_nested():
            db.session.add(order)
            db.session.flush()
    except IntegrityError:
        existing = _find(store.id, printed.number)
        if existing is None:
            raise
        return Booked(_seen_by(existing, source), created=False)
    if order.moves_stock:
        for line in order.lines:
            _sold_on_mall(line)
            _allocate(order, line)
    return Booked(order, created=True)


def ship(order: Order, user: Optional[User] = None) -> Order:
    """出荷済み: each line's units leave the warehouse (在庫数 and 引当数 both fall)."""
    if order.status != OrderStatus.RECEIVED.value:
        raise OrderError(_l("Only a received order can be marked shipped (this one is %(status)s).",
                            status=status_label(order.status)))
    order.status = OrderStatus.SHIPPED.value
    order.shipped_at = utcnow()
    for line in order.lines:
        if line.stock == LineStock.ALLOCATED.value:
            _move(order, line, on_hand=-line.quantity, allocated=-line.quantity, kind=StockChangeKind.SHIPMENT,
                  user=user, to=LineStock.SHIPPED)
    return order


def cancel(order: Order, *, restock: bool = False, user: Optional[User] = None) -> Order:
    """キャンセル: before shipping the allocation is given back; after shipping, the units come back to stock only
    with `restock` (返品・再入庫)."""
    if order.status == OrderStatus.CANCELLED.value:
        raise OrderError(_l("This order is already cancelled."))
    order.status = OrderStatus.CANCELLED.value
    order.cancelled_at = utcnow()
    for line in order.lines:
        if line.stock == LineStock.ALLOCATED.value:
            _move(order, line, on_hand=0, allocated=-line.quantity, kind=StockChangeKind.CANCELLATION, user=user,
                  to=LineStock.RELEASED)
        elif line.stock == LineStock.SHIPPED.value and restock:
            _move(order, line, on_hand=line.quantity, allocated=0, kind=StockChangeKind.RESTOCK, user=user,
                  to=LineStock.RESTOCKED)
    return order


def link_line(line: OrderLine, listing: Listing, user: Optional[User] = None) -> OrderLine:
    """紐付け of a 未紐付け line: from now on it is this listing's sale, and its stock moves as the order's
    status says (a received order allocates, a shipped one takes the units out)."""
    if line.listing_id is not None:
        raise OrderError(_l("This line is already linked."))
    if listing.store_id != line.order.store_id:
        raise OrderError(_l("Choose a listing of the store the order came from."))
    if listing.product_id is None:
        raise OrderError(_l("This listing is not linked to a product yet: link it to a product first."))
    line.listing_id = listing.id
    line.product_id = listing.product_id
    order = line.order
    if not order.moves_stock:
        return line  # fulfilled by the mall (FBA): the link is for the record only
    _sold_on_mall(line)
    if order.status == OrderStatus.RECEIVED.value:
        _allocate(order, line, user=user)
    elif order.status == OrderStatus.SHIPPED.value:
        _move(order, line, on_hand=-line.quantity, allocated=0, kind=StockChangeKind.SHIPMENT, user=user,
              to=LineStock.SHIPPED)
    return line


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


STATUS_LABELS = {
    OrderStatus.RECEIVED.value: _l("Received"),
    OrderStatus.SHIPPED.value: _l("Shipped"),
    OrderStatus.CANCELLED.value: _l("Cancelled"),
}


def _find(store_id: int, number: str) -> Optional[Order]:
    return db.session.scalar(select(Order).where(Order.store_id == store_id, Order.number == number))


def _seen_by(order: Order, source: str) -> Order:
    if source not in (order.sources or []):
        order.sources = [*(order.sources or []), source]  # a new list: the JSON column sees the change
    return order


def _allocate(order: Order, line: OrderLine, user: Optional[User] = None) -> None:
    if line.product_id is not None and line.stock == LineStock.NONE.value:
        _move(order, line, on_hand=0, allocated=line.quantity, kind=StockChangeKind.ORDER, user=user,
              to=LineStock.ALLOCATED)


def _move(order: Order, line: OrderLine, *, on_hand: int, allocated: int, kind: StockChangeKind,
          user: Optional[User], to: LineStock) -> None:
    if line.product_id is not None:
        inventory.move_for_order(line.product_id, on_hand_change=on_hand, allocated_change=allocated, kind=kind,
                                 order_id=order.id, user=user, note=order.number)
    line.stock = to.value


def _sold_on_mall(line: OrderLine) -> None:
    """The mall took the units off its own count when it sold them: Tatenpo's idea of what the mall shows
    follows, so the next push does not mistake this sale for an unexplained decrease."""
    if line.listing_id is not None:
        db.session.execute(
            update(Listing)
            .where(Listing.id == line.listing_id)
            .values(mall_expected=func.coalesce(Listing.mall_expected, Listing.mall_quantity) - line.quantity)
            .execution_options(synchronize_session=False)
        )


def _search_text(order: Order) -> str:
    parts = [order.number] + [f"{line.item_code} {line.variant_code} {line.title}" for line in order.lines]
    return search_key(*parts)[:2000]
