"""Changing stock. Every change of a product's stock goes through `set_stock` or `adjust_stock`, which, in
the caller's transaction: validate, change the quantity, append a StockHistory row, and create or refresh
the SyncEntry of every listing of the product that is to be pushed. The caller commits (a bulk import
commits once, so a failed file changes nothing); nothing here commits or knows about HTTP.

Which listings are pushed, and what quantity, are the rules of tatenpo.stock.rules.

A セット商品 holds no stock (tatenpo.stock.sets): `set_stock`/`adjust_stock` refuse it, an order line of a set
moves its parts (`move_for_order`), and every change of a part schedules the listings of every set containing
it, in the same transaction, with one statement whatever the number of sets (`schedule_sets_of`).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Optional, Protocol

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, bindparam, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from tatenpo.models import Listing, Product, SetPart, StockChangeKind, StockHistory, Store, SyncEntry, User, utcnow
from tatenpo.platform.extensions import db
from tatenpo.stock import rules

# The largest stock the database column (a 32-bit integer) and every mall can take.
MAX_QUANTITY = 99_999_999

# Session.info key: stores whose schedule changed in this transaction (sync.queueing acts on it after commit).
STORES_CHANGED = "tatenpo.stores_changed"
# Session.info key: this transaction holds a sale, so every changed store is pushed at once (as 即時同期).
URGENT = "tatenpo.urgent"


class StockError(ValueError):
    """Invalid stock input; the message is for the user, in their language."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


# Full-width digits, comma and signs (what a Japanese IME types) read as their ASCII selves; no other script's
# digits (٣) and no superscripts (²): NFKC would have turned those into numbers nobody meant.
_FULL_WIDTH = str.maketrans({**{chr(0xFF10 + d): str(d) for d in range(10)}, "，": ",", "－": "-", "＋": "+"})
_DIGITS = re.compile(r"[0-9]+")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+")  # 1,500 and 12,345,678; never 1,5 or 15,00
_MAX_DIGITS = len(str(MAX_QUANTITY)) + 3  # leading zeros allowed; int() never sees a 5,000-digit text


def _shown(value) -> str:
    text = str(value)
    return text if len(text) <= 20 else text[:20] + "…"


def parse_quantity(value, *, allow_sign: bool = False) -> int:
    """A quantity typed by a person or read from a CSV: ASCII or full-width digits, with commas only as
    thousands grouping (1,500 and １，５００ → 1500); decimals, words, other digits and empty input are refused
    with a message saying why."""
    if isinstance(value, bool):
        raise StockError(_l("Enter a whole number."))
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise StockError(_l("Enter a whole number (no decimals)."))
    text = str(value).translate(_FULL_WIDTH).strip()
    if text == "":
        raise StockError(_l("Enter a quantity."))
    sign = ""
    if text[0] in "+-":
        sign, text = text[0], text[1:]
        if not allow_sign and sign == "+":
            sign = ""
    if len(text) > _MAX_DIGITS * 4 // 3:
        raise StockError(_l("Stock cannot exceed %(max)s.", max=f"{MAX_QUANTITY:,}"))
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    elif "," in text and _DIGITS.fullmatch(text.replace(",", "")):
        raise StockError(_l("“%(value)s”: commas go only between groups of three digits, as in 1,500.",
                            value=_shown(value)))
    elif not _DIGITS.fullmatch(text):
        raise StockError(_l("“%(value)s” is not a whole number.", value=_shown(value)))
    if len(text.lstrip("0")) > _MAX_DIGITS:
        raise StockError(_l("Stock cannot exceed %(max)s.", max=f"{MAX_QUANTITY:,}"))
    return int(sign + text)


def _validate_result(quantity: int) -> None:
    if quantity < 0:
        raise StockError(_l("Stock cannot go below zero (the result would be %(q)s).", q=quantity))
    if quantity > MAX_QUANTITY:
        raise StockError(_l("Stock cannot exceed %(max)s.", max=f"{MAX_QUANTITY:,}"))


# The statements of a single stock change are built once: a shop's staff save stocks all day, and building
# and keying them again for each save cost more than running them.
_LOCK_PRODUCT = (
    update(Product)
    .where(Product.id == bindparam("product_id", type_=Integer()))
    .values(version=Product.version + 1)
    .returning(Product)
    .execution_options(synchronize_session=False, populate_existing=True)
)


def lock_product(product_id: int) -> Product:
    """Take the product's row lock and return its current state.

    The statement is a write on purpose: on PostgreSQL it holds the row lock until commit; on SQLite it takes
    the database's write lock, so the state it returns (RETURNING, in the same statement) cannot be stale.
    Both backends then serialise concurrent changes to one product instead of losing one of them.
    """
    locked = db.session.execute(_LOCK_PRODUCT, {"product_id": product_id}).scalar_one_or_none()
    if locked is None:
        raise StockError(_l("The product no longer exists."))
    return locked


class StockConflict(StockError):
    """Someone else changed 在庫数 since the editor saw it: an absolute edit would silently undo theirs."""

    def __init__(self, current: int, typed: int) -> None:
        super().__init__(_l("Someone else changed the stock to %(current)s meanwhile; you typed %(typed)s. "
                            "Nothing was saved.", current=f"{current:,}", typed=f"{typed:,}"))
        self.current = current
        self.typed = typed


class SetHasNoStock(StockError):
    """A セット商品's stock is its parts': it is never set or adjusted itself."""

    def __init__(self, code: str) -> None:
        super().__init__(_l("%(code)s is a set product: it has no stock of its own. Change the stock of its parts.",
                            code=code))


def _not_a_set(locked: Product) -> Product:
    if locked.is_set:
        raise SetHasNoStock(locked.code)
    return locked


def set_stock(
    product: Product | int,
    quantity,
    *,
    kind: StockChangeKind = StockChangeKind.MANUAL,
    user: Optional[User] = None,
    note: Optional[str] = None,
    expected: Optional[int] = None,
) -> StockHistory:
    """Set 在庫数 to `quantity` (absolute). With `expected` (the 在庫数 the editor saw), refuse with a
    StockConflict when it has changed since, and change nothing."""
    target = parse_quantity(quantity)
    _validate_result(target)
    locked = _not_a_set(lock_product(product if isinstance(product, int) else product.id))
    if expected is not None and locked.on_hand != expected:
        raise StockConflict(locked.on_hand, target)
    return _record(locked, target - locked.on_hand, kind=kind, user=user, note=note)


def adjust_stock(
    product: Product | int,
    delta,
    *,
    kind: StockChangeKind = StockChangeKind.MANUAL,
    user: Optional[User] = None,
    note: Optional[str] = None,
) -> StockHistory:
    """Change 在庫数 by `delta` (±N)."""
    change = parse_quantity(delta, allow_sign=True)
    locked = _not_a_set(lock_product(product if isinstance(product, int) else product.id))
    _validate_result(locked.on_hand + change)
    return _record(locked, change, kind=kind, user=user, note=note)


def _record(product: Product, change: int, *, kind, user, note, allocated_change: int = 0,
            order_id: Optional[int] = None) -> StockHistory:
    product.on_hand += change
    product.allocated += allocated_change
    entry = StockHistory(
        product_id=product.id,
        product_code=product.code,
        change=change,
        quantity_after=product.on_hand,
        kind=int(StockChangeKind(kind)),
        allocated_change=allocated_change,
        order_id=order_id,
        user_id=user.id if user is not None else None,
        note=note,
    )
    db.session.add(entry)
    stock = ProductStock(product.sellable, product.stock_managed)
    listings = [
        PushableListing(id_, store_id, enabled, maximum, stock, StoreRules(auto_sync, safety_stock))
        for id_, store_id, enabled, maximum, auto_sync, safety_stock in db.session.execute(
            _LISTINGS_OF_PRODUCT, {"product_id": product.id}
        )
    ]
    schedule(listings)
    schedule_sets_of([product.id])
    return entry


def move_for_order(
    product_id: int,
    *,
    on_hand_change: int,
    allocated_change: int,
    kind: StockChangeKind,
    order_id: int,
    user: Optional[User] = None,
    note: Optional[str] = None,
) -> StockHistory:
    """One order line's step on its product (受注 allocates, 出荷 takes out, キャンセル releases, 再入庫 puts
    back), with the 在庫履歴 row naming the order. A sale is a fact: 販売可能数 may fall below zero. The
    counts themselves never do — a shipment larger than what is on hand (the count was wrong) leaves 0 and
    says so in the note.

    A set's line moves each of its parts by the set's quantity × the part's (one 在庫履歴 row per part, naming
    the order and the set); the set itself holds nothing. Returns the last row written."""
    set_code, targets = _lock_stock_of(product_id)
    db.session.info.setdefault(URGENT, True)
    entry = None
    for locked, quantity in targets:
        step_note = note if set_code is None else f"{note or ''} (セット {set_code})".strip()
        on_hand_step, allocated_step = on_hand_change * quantity, allocated_change * quantity
        change = max(on_hand_step, -locked.on_hand)
        allocated = max(allocated_step, -locked.allocated)
        if change != on_hand_step:
            step_note = f"{step_note or ''} (在庫数 {locked.on_hand} < {-on_hand_step})".strip()
        entry = _record(locked, change, kind=kind, user=user, note=step_note, allocated_change=allocated,
                        order_id=order_id)
    return entry


def book_mall_sale(product_id: int, units: int, *, user: Optional[User] = None, note: Optional[str] = None) -> None:
    """A sale seen only on a mall (説明のない減少 adopted as a sale, tatenpo.sync.decreases): 在庫数 falls by
    `units`, never below 0. A set's sale takes its parts (units × each part's quantity), as its order would."""
    set_code, targets = _lock_stock_of(product_id)
    for locked, quantity in targets:
        taken = min(units * quantity, locked.on_hand)
        if taken > 0:
            _record(locked, -taken, kind=StockChangeKind.MALL_SALE, user=user,
                    note=note if set_code is None else f"{note or ''} (セット {set_code})".strip())


def _lock_stock_of(product_id: int) -> tuple[Optional[str], list[tuple[Product, int]]]:
    """What a sale of one unit of the product moves, locked: (None, [(the product, 1)]) for an ordinary product;
    (the set's code, [(each part, its quantity per set)]) for a set.

    A set's parts are all locked first, in id order, then every set containing any of them (lock_sets_of),
    before anything is written: a change of a part locks the part, then its sets, so taking a part's lock
    while holding a set's could deadlock with it. The set's own row is not locked: it holds no stock."""
    parts = db.session.execute(
        select(SetPart.part_id, SetPart.quantity).where(SetPart.set_id == product_id).order_by(SetPart.part_id)
    ).all()
    if not parts:
        locked = lock_product(product_id)
        if locked.is_set:
            raise StockError(_l("The set product %(code)s has no parts.", code=locked.code))
        return None, [(locked, 1)]
    code = db.session.scalar(select(Product.code).where(Product.id == product_id))
    targets = [(lock_product(part_id), quantity) for part_id, quantity in parts]
    lock_sets_of([part_id for part_id, _quantity in parts])
    return code, targets


# Products per statement in the bulk path (under SQLite's limit of bound parameters per statement).
CHUNK = 900


def set_stock_many(
    targets: Mapping[int, int],
    *,
    kind: StockChangeKind,
    user: Optional[User] = None,
    note: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> list[int]:
    """`set_stock` for many products at once (在庫取込 of a whole file): the same steps — lock each product by
    writing to it first, read its stock under the lock, set 在庫数, append a history row with the real
    change, schedule its listings — with a few statements per 900 products instead of several per product.
    Returns the ids whose stock changed. `progress(done, total)` is called after each chunk."""
    for quantity in targets.values():
        _validate_result(parse_quantity(quantity))
    ids = sorted(targets)  # one locking order for every caller: two bulk changes cannot deadlock
    products = Product.__table__
    now = utcnow()
    changed: list[int] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        db.session.execute(
            update(Product).where(Product.id.in_(chunk)).values(version=Product.version + 1)
            .execution_options(synchronize_session=False)
        )
        updates, history = [], []
        for product_id, code, on_hand, is_set in db.session.execute(
            select(Product.id, Product.code, Product.on_hand, Product.is_set).where(Product.id.in_(chunk))
        ):
            after = parse_quantity(targets[product_id])
            if after == on_hand:
                continue  # already at the target: nothing happened, so nothing to record or push
            if is_set:
                raise SetHasNoStock(code)
            updates.append({"product_id": product_id, "after": after})
            history.append({
                "product_id": product_id, "product_code": code, "change": after - on_hand, "quantity_after": after,
                "kind": int(StockChangeKind(kind)), "user_id": user.id if user is not None else None,
                "note": note, "created_at": now,
            })
            changed.append(product_id)
        if updates:
            db.session.execute(
                update(products).where(products.c.id == bindparam("product_id"))
                .values(on_hand=bindparam("after"), updated_at=now),
                updates,
            )
            db.session.execute(insert(StockHistory), history)
        if progress is not None:
            progress(min(start + CHUNK, len(ids)), len(ids))
    schedule_products(changed)
    return changed


def product_sellable_sql(product=Product):
    """販売可能数 of `product` (the Product entity or an alias of it) as SQL, a set's included: a set's from its
    parts by a correlated MIN (tatenpo.stock.rules.set_sellable_sql), so a statement over many listings of many
    sets stays one statement."""
    part = aliased(Product, name="set_part_product")
    least = rules.set_sellable_sql(
        rules.sellable_sql(part.on_hand, part.allocated), SetPart.quantity,
        SetPart.set_id == product.id, part.id == SetPart.part_id,
    )
    return rules.product_sellable_sql(product.is_set, rules.sellable_sql(product.on_hand, product.allocated), least)


def schedule_sets_of(part_ids: list[int]) -> int:
    """Schedule every pushed listing of every set containing one of these products (after their stock changed):
    one INSERT … SELECT … ON CONFLICT per 900 parts, the quantity computed in the database by the rules — a
    part shared by a thousand sets listed on four stores is one statement, not four thousand."""
    # Most products are no set's part: one look at set_parts' index settles that, where the statement below
    # costs milliseconds to prepare and run for nothing (on SQLite every statement is prepared afresh).
    part_ids = parts_of_sets(part_ids)
    if not part_ids:
        return 0
    lock_sets_of(part_ids)
    statement = _schedule_sets_statement(db.session.get_bind().dialect.name)
    stores: list[int] = []
    now = utcnow()
    for start in range(0, len(part_ids), CHUNK):
        stores += db.session.scalars(statement, {"part_ids": part_ids[start : start + CHUNK], "now": now}).all()
    if stores:
        db.session.info.setdefault(STORES_CHANGED, set()).update(stores)
    return len(stores)


_PARTS_OF_SETS = (
    select(SetPart.part_id).where(SetPart.part_id.in_(bindparam("part_ids", expanding=True))).distinct()
)


def parts_of_sets(product_ids: list[int]) -> list[int]:
    """Those of the products that are a part of some set, in id order."""
    found: set[int] = set()
    for start in range(0, len(product_ids), CHUNK):
        found.update(db.session.scalars(_PARTS_OF_SETS, {"part_ids": product_ids[start : start + CHUNK]}))
    return sorted(found)


def lock_sets_of(part_ids: list[int]) -> None:
    """Lock the rows of every set containing these parts, in id order, before their listings are scheduled.

    A set's 販売可能数 reads all its parts, while each change locks only the part it changes: on PostgreSQL two
    changes of two parts of one set, each computing the set from the other's value before it committed, would
    leave the set's listings with whichever wrote last — possibly more than the parts allow. Holding the set's
    row makes the second wait and compute from the first's committed value. SQLite runs one writer at a time,
    so there is nothing to lock (and no statement to spend)."""
    if not part_ids or db.session.get_bind().dialect.name != "postgresql":
        return
    set_ids: set[int] = set()
    for start in range(0, len(part_ids), CHUNK):
        set_ids.update(db.session.scalars(
            select(SetPart.set_id).where(SetPart.part_id.in_(part_ids[start : start + CHUNK]))))
    ordered = sorted(set_ids)  # one locking order for every caller: two changes cannot deadlock on their sets
    for start in range(0, len(ordered), CHUNK):
        db.session.execute(select(Product.id).where(Product.id.in_(ordered[start : start + CHUNK]))
                           .order_by(Product.id).with_for_update())


_ENTRY_COLUMNS = ("listing_id", "store_id", "target_quantity", "version", "due_at", "attempts", "created_at",
                  "updated_at")


@functools.cache
def _schedule_sets_statement(dialect: str):
    """`schedule` done in the database for the pushed listings of the sets containing `part_ids`, returning
    each scheduled listing's store; built once, run with `part_ids` (expanding) and `now`.

    Each set's 販売可能数 is computed once, grouped by set (rules.set_sellable_aggregate_sql), and joined to its
    listings: not a correlated subquery per listing, which the CASEs of the pushed quantity would repeat."""
    now = bindparam("now", type_=SyncEntry.__table__.c.due_at.type)
    part = aliased(Product, name="set_part_product")
    sets = select(SetPart.set_id).where(SetPart.part_id.in_(bindparam("part_ids", expanding=True)))
    set_stock = (
        select(SetPart.set_id, rules.set_sellable_aggregate_sql(rules.sellable_sql(part.on_hand, part.allocated),
                                                                SetPart.quantity).label("sellable"))
        .join(part, part.id == SetPart.part_id)
        .where(SetPart.set_id.in_(sets))
        .group_by(SetPart.set_id)
        .subquery("set_stock")
    )
    quantity = rules.quantity_to_push_sql(set_stock.c.sellable, Store.safety_stock, Listing.max_quantity)
    rows = (
        select(Listing.id, Listing.store_id, quantity, literal(1), now, literal(0), now, now)
        .join(set_stock, set_stock.c.set_id == Listing.product_id)
        .join(Product, Product.id == Listing.product_id)
        .join(Store, Store.id == Listing.store_id)
        .where(Product.is_set.is_(True),
               rules.is_pushed_sql(Listing.product_id, Listing.sync_enabled, Product.stock_managed, Store.auto_sync))
    )
    return _upsert(dialect, rows).returning(SyncEntry.__table__.c.store_id)


class PushRulesProduct(Protocol):
    """What the push rules read of a product: a Product, or a ProductStock."""

    @property
    def sellable(self) -> int: ...

    @property
    def stock_managed(self) -> bool: ...


class PushRulesStore(Protocol):
    """What the push rules read of a store: a Store, or a StoreRules."""

    @property
    def auto_sync(self) -> bool: ...

    @property
    def safety_stock(self) -> int: ...


class PushRulesListing(Protocol):
    """What `pushed_quantity` and `schedule` read of a listing: a Listing, or a PushableListing."""

    @property
    def id(self) -> int: ...

    @property
    def store_id(self) -> int: ...

    @property
    def sync_enabled(self) -> bool: ...

    @property
    def max_quantity(self) -> Optional[int]: ...

    @property
    def product(self) -> Optional[PushRulesProduct]: ...

    @property
    def store(self) -> PushRulesStore: ...


@dataclass(frozen=True, slots=True)
class ProductStock:
    """What the rules read of a product, without loading it as an ORM object."""

    sellable: int
    stock_managed: bool


@dataclass(frozen=True, slots=True)
class StoreRules:
    """What the rules read of a store."""

    auto_sync: bool
    safety_stock: int


@dataclass(frozen=True, slots=True)
class PushableListing:
    """A linked listing read as plain columns for `pushed_quantity` and `schedule`: bulk callers pass these
    instead of ORM rows."""

    id: int
    store_id: int
    sync_enabled: bool
    max_quantity: Optional[int]
    product: ProductStock
    store: Store | StoreRules


_LISTINGS_OF_PRODUCT = (
    select(
        Listing.id, Listing.store_id, Listing.sync_enabled, Listing.max_quantity, Store.auto_sync, Store.safety_stock
    )
    .join(Store, Store.id == Listing.store_id)
    .where(Listing.product_id == bindparam("product_id", type_=Integer()))
)


def pushable_listings(where, stores: Optional[dict[int, Store]] = None) -> list[PushableListing]:
    """The linked listings matching `where`, with their product's stock as it is now in this transaction."""
    stores = stores if stores is not None else {s.id: s for s in db.session.scalars(select(Store))}
    rows = db.session.execute(
        select(Listing.id, Listing.store_id, Listing.sync_enabled, Listing.max_quantity,
               product_sellable_sql(), Product.stock_managed)
        .join(Product, Product.id == Listing.product_id)
        .where(where)
    )
    return [
        PushableListing(id_, store_id, enabled, maximum, ProductStock(sellable, managed), stores[store_id])
        for id_, store_id, enabled, maximum, sellable, managed in rows
    ]


def schedule_products(product_ids: list[int]) -> int:
    """Schedule every listing of these products, and of the sets containing them (after their stock changed in
    bulk)."""
    stores = {s.id: s for s in db.session.scalars(select(Store))}
    count = 0
    for start in range(0, len(product_ids), CHUNK):
        count += schedule(pushable_listings(Listing.product_id.in_(product_ids[start : start + CHUNK]), stores))
    return count + schedule_sets_of(product_ids)


def pushed_quantity(
    listing: PushRulesListing, product: Optional[PushRulesProduct] = None, store: Optional[PushRulesStore] = None
) -> Optional[int]:
    """The quantity the mall should show for this listing, or None when the listing is not pushed. `product`
    and `store` spare loading the listing's own when the caller has them."""
    product = product or listing.product
    store = store or listing.store
    linked = product is not None
    if not rules.is_pushed(linked, listing.sync_enabled, linked and product.stock_managed, store.auto_sync):
        return None
    return rules.quantity_to_push(product.sellable, store.safety_stock, listing.max_quantity)


def schedule(listings: Iterable[PushRulesListing]) -> int:
    """Create or refresh the open SyncEntry of each listing that is to be pushed; returns how many.

    An upsert per listing (INSERT … ON CONFLICT on the listing, in one executemany): a push closing the entry
    at the same moment can never make this change disappear, since whichever commits second leaves an entry
    with the newest target (a push closes an entry only when its version is still the one it pushed).
    """
    now = utcnow()
    rows = []
    stores: set[int] = set()
    for listing in listings:
        quantity = pushed_quantity(listing)
        if quantity is None:
            continue
        rows.append(
            {
                "listing_id": listing.id,
                "store_id": listing.store_id,
                "target_quantity": quantity,
                "version": 1,
                "due_at": now,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
        stores.add(listing.store_id)
    if not rows:
        return 0
    db.session.execute(_upsert(db.session.get_bind().dialect.name), rows)
    db.session.info.setdefault(STORES_CHANGED, set()).update(stores)
    return len(rows)


@functools.cache
def _upsert(dialect: str, rows=None):
    """INSERT … ON CONFLICT of one entry per parameter set (or per row of the select `rows`, in the order of
    _ENTRY_COLUMNS): a new entry, or the open one refreshed (its version bumped, so that a push of the old
    target cannot close it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = SyncEntry.__table__
    statement = insert(table) if rows is None else insert(table).from_select(list(_ENTRY_COLUMNS), rows)
    return statement.on_conflict_do_update(
        index_elements=[table.c.listing_id],
        set_={
            "target_quantity": statement.excluded.target_quantity,
            "version": table.c.version + 1,
            "due_at": statement.excluded.due_at,
            "attempts": 0,
            "last_error": None,
            "updated_at": statement.excluded.updated_at,
        },
    )


def schedule_store(store: Store) -> int:
    """Re-schedule every linked listing of a store (after its 保留在庫 or 自動在庫同期区分 changed)."""
    return schedule(pushable_listings(Listing.store_id == store.id, {store.id: store}))
