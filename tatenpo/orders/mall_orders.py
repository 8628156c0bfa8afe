"""受注 as a mall's own order data reports it (order API, webhook, order CSV), and the one rule that applies such a
report to Tatenpo's orders, whatever door it came through.

One order per store and mall order number (tatenpo.orders.book keeps that): mail first and API later, or the
reverse, is one order. A report
- creates the order when no door has seen it yet (the mail was lost), allocating as a mail would — except an
  order the mall fulfils itself (Amazon FBA, `moves_stock=False`), which is shown but never allocates;
- notes its door in the order's sources;
- fills what the mail lacked: an unmatched (未紐付け) line gets the SKU the API names, and is linked when that
  finds the listing, so it applies its stock once, then;
- applies the status it reports once: received → shipped ships; → cancelled releases the allocation before
  shipping; a cancel after shipping does not restock on its own (the shop says 再入庫 on the order page);
  a cancelled order stays cancelled; an older report (the poll's overlap window, a late webhook) moves nothing;
- keeps the mall's own status text for the order page.
The caller commits.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy import select

from tatenpo.models import Order, OrderLine, OrderStatus, Store
from tatenpo.orders import book, matching
from tatenpo.platform.extensions import db

SOURCES = ("api", "webhook", "csv")


@dataclass(frozen=True)
class MallOrderLine:
    item_code: str  # 楽天 manageNumber (商品管理番号), Yahoo ItemId, Amazon SellerSKU, Shopify SKU
    variant_code: str  # 楽天 variantId / merchantDefinedSkuId (SKU管理番号), Yahoo SubCode; "" when none
    quantity: int
    title: str = ""
    choices: str = ""  # "カラー:ブルー / サイズ:M" where the mall gives it
    unit_price: int | None = None


@dataclass(frozen=True)
class MallOrder:
    number: str  # the mall's order number, as the order mail prints it (so mail and API meet)
    status: OrderStatus  # mapped from the mall's own
    mall_status: str  # the mall's own status, shown on the order page (e.g. "500 発送済")
    lines: tuple[MallOrderLine, ...]
    ordered_at: datetime | None = None  # naive UTC, like the rest of the models
    updated_at: datetime | None = None  # the mall's last-updated time (the poll cursor follows it)
    moves_stock: bool = True  # False for Amazon FBA (AFN): shown, never allocates


@dataclass
class Applied:
    order: Order
    created: bool  # a new order (no door had seen it)
    changed: bool  # anything moved: status applied, lines filled/linked, a new source noted


def apply(store: Store, mall_order: MallOrder, *, source: str) -> Applied:
    """Bring Tatenpo's order in line with what the mall reports (see the module's doc). Safe to repeat: a
    report already applied changes nothing. The order row is locked (PostgreSQL) while it is applied, so the
    same order arriving through two doors at once moves its stock once."""
    if source not in SOURCES:
        raise ValueError(f"unknown order source {source!r}")
    order = _locked(store.id, mall_order.number)
    created = changed = False
    if order is None:
        booked = book.record(store, mall_order, source=source, moves_stock=mall_order.moves_stock)
        # created, or another door inserted it a moment ago (record noted this source on it then): either way
        # something changed. Take the row lock before touching its status.
        created, changed = booked.created, True
        order = booked.order if created else _locked(store.id, mall_order.number)
    if not created:
        changed |= _note_source(order, source)
        changed |= _fill_lines(store, order, mall_order.lines)
    if _is_stale(order, mall_order.updated_at):
        return Applied(order, created, changed)
    changed |= _apply_status(order, mall_order.status)
    mall_status = (mall_order.mall_status or "")[:64]
    if order.mall_status != mall_status:
        order.mall_status = mall_status
        changed = True
    if mall_order.updated_at is not None:
        order.mall_updated_at = mall_order.updated_at
    return Applied(order, created, changed)


def _locked(store_id: int, number: str) -> Optional[Order]:
    # FOR UPDATE on PostgreSQL (SQLite ignores it: there one writer runs at a time anyway); populate_existing so
    # a row another door changed before we got the lock is read again.
    return db.session.scalar(
        select(Order).where(Order.store_id == store_id, Order.number == number)
        .with_for_update().execution_options(populate_existing=True)
    )


def _note_source(order: Order, source: str) -> bool:
    if source in (order.sources or []):
        return False
    order.sources = [*(order.sources or []), source]  # a new list: the JSON column sees the change
    return True


def _is_stale(order: Order, updated_at: Optional[datetime]) -> bool:
    return updated_at is not None and order.mall_updated_at is not None and updated_at < order.mall_updated_at


def _apply_status(order: Order, status: OrderStatus) -> bool:
    current = order.status
    if status.value == current or current == OrderStatus.CANCELLED.value:
        return False  # nothing new, or final: a cancelled order is not revived by a report
    if status == OrderStatus.SHIPPED and current == OrderStatus.RECEIVED.value:
        book.ship(order)
        return True
    if status == OrderStatus.CANCELLED:
        book.cancel(order, restock=False)
        return True
    return False  # shipped → received: a report older than what we applied


def _fill_lines(store: Store, order: Order, mall_lines: Sequence[MallOrderLine]) -> bool:
    """Give 未紐付け lines the SKU the mall reports and link them when that finds their listing."""
    if all(line.listing_id is not None for line in order.lines):
        return False
    changed = False
    matching.fill_order_codes(store.id)
    for line, reported in _pairs(order.lines, mall_lines):
        if line.listing_id is not None:
            continue
        if not line.variant_code and reported.variant_code:
            line.variant_code = reported.variant_code[:255]
            changed = True
        listing = matching.match(store.id, reported) or matching.match(store.id, line)
        if listing is not None and listing.product_id is not None:
            book.link_line(line, listing)
            changed = True
    if changed:
        order.search_text = book._search_text(order)
    return changed


def _pairs(lines: Sequence[OrderLine], reported: Sequence[MallOrderLine]) -> list[tuple[OrderLine, MallOrderLine]]:
    """Which reported line each kept line is: the same code (or title) and quantity, then the same code or
    title; what is left pairs by position when as many are left on both sides (a mail printing 商品番号 where
    the API gives 商品管理番号, in the same order)."""
    pairs: list[tuple[OrderLine, MallOrderLine]] = []
    left_lines, left_reported = list(lines), list(reported)
    for same_quantity in (True, False):
        for line in list(left_lines):
            for candidate in left_reported:
                if _same_item(line, candidate) and (not same_quantity or line.quantity == candidate.quantity):
                    pairs.append((line, candidate))
                    left_lines.remove(line)
                    left_reported.remove(candidate)
                    break
    if left_lines and len(left_lines) == len(left_reported):
        pairs.extend(zip(left_lines, left_reported))
    return pairs


def _same_item(line: OrderLine, reported: MallOrderLine) -> bool:
    codes = {c.strip().casefold() for c in (line.item_code, line.variant_code) if c and c.strip()}
    if {c.strip().casefold() for c in (reported.item_code, reported.variant_code) if c and c.strip()} & codes:
        return True
    return bool(line.title) and matching._norm(line.title) == matching._norm(reported.title)
