"""セット商品: a product sold as a set of other products (3袋セット, 2枚組, a gift box of a mug and a towel).

A set is made of parts — ordinary products, each with the number one set takes — and holds no stock of its
own: its 販売可能数 is the fewest whole sets its parts allow (tatenpo.stock.rules.set_sellable), and its listings
push that number. A set is never a part of another set. Its own 在庫数 and 引当数 stay 0 (the database refuses
anything else); an order line of a set allocates, ships and returns its parts (inventory.move_for_order), and
every change of a part schedules the listings of every set containing it (inventory.schedule_sets_of).

Making a product with stock a set asks first: its 在庫数 is set to 0 with a 在庫履歴 row saying why, or nothing
changes. A product with 引当数 (orders not yet shipped) cannot become a set: those orders move its own stock.
Nothing here commits; the caller does.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, insert, select, update

from tatenpo.models import Listing, Product, SetPart, StockChangeKind, User, fold
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory, rules


class SetError(ValueError):
    """A set that cannot be made as asked; the message is for the user, in their language."""

    def __init__(self, message, code: Optional[str] = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.code = code  # the part the problem is about, if one is (a CSV names its row)


class StockWouldBeCleared(SetError):
    """The product has 在庫数 of its own: making it a set needs the shop's yes to set it to 0."""

    def __init__(self, code: str, on_hand: int) -> None:
        super().__init__(_l("%(code)s has %(n)s in stock. A set holds no stock of its own: making it a set sets its "
                            "stock to 0 (recorded in the stock history).", code=code, n=f"{on_hand:,}"))
        self.on_hand = on_hand


@dataclass(frozen=True)
class PartLine:
    """One part of a set as the pages show it: the part, how many one set takes, its 販売可能数, and how many
    whole sets that allows."""

    part_id: int
    code: str
    name: str
    quantity: int
    sellable: int

    @property
    def allows(self) -> int:
        return rules.set_sellable([(self.sellable, self.quantity)])


@dataclass(frozen=True)
class SetView:
    """A set with its parts, its 販売可能数, and the parts that limit it (those allowing exactly that many)."""

    id: int
    code: str
    name: str
    parts: list[PartLine] = field(default_factory=list)

    @property
    def sellable(self) -> int:
        return rules.set_sellable((p.sellable, p.quantity) for p in self.parts)

    @property
    def limiting(self) -> list[PartLine]:
        least = self.sellable
        return [p for p in self.parts if p.allows == least]

    def as_dict(self) -> dict:
        return {
            "code": self.code, "name": self.name, "set": True, "sellable": self.sellable,
            "limited_by": [p.code for p in self.limiting],
            "parts": [{"code": p.code, "name": p.name, "quantity": p.quantity, "sellable": p.sellable,
                       "allows": p.allows} for p in self.parts],
        }


def view(product: Product | int) -> Optional[SetView]:
    """The set with its parts as they stand now, or None when the product is not a set."""
    product = product if isinstance(product, Product) else db.session.get(Product, product)
    if product is None or not product.is_set:
        return None
    return views([product.id]).get(product.id)


def views(set_ids: Iterable[int]) -> dict[int, SetView]:
    """Several sets with their parts (one query): by set id."""
    ids = list(set_ids)
    if not ids:
        return {}
    found: dict[int, SetView] = {
        id_: SetView(id_, code, name)
        for id_, code, name in db.session.execute(
            select(Product.id, Product.code, Product.name).where(Product.id.in_(ids), Product.is_set.is_(True)))
    }
    part = Product.__table__.alias("part")
    rows = db.session.execute(
        select(SetPart.set_id, part.c.id, part.c.code, part.c.name, SetPart.quantity,
               rules.sellable_sql(part.c.on_hand, part.c.allocated))
        .join(part, part.c.id == SetPart.part_id)
        .where(SetPart.set_id.in_(ids))
        .order_by(SetPart.set_id, SetPart.id)
    )
    for set_id, part_id, code, name, quantity, sellable in rows:
        if set_id in found:
            found[set_id].parts.append(PartLine(part_id, code, name, quantity, sellable))
    return found


def sets_containing(product_id: int) -> list[tuple[int, str, int]]:
    """The sets this product is a part of: (set id, set code, quantity per set), by code."""
    return list(db.session.execute(
        select(Product.id, Product.code, SetPart.quantity).join(SetPart, SetPart.set_id == Product.id)
        .where(SetPart.part_id == product_id).order_by(Product.code)))


def parse_part_quantity(value) -> int:
    """How many of a part one set takes: a whole number above 0 (typed or from a CSV)."""
    try:
        quantity = inventory.parse_quantity(value)
    except inventory.StockError as exc:
        raise SetError(exc.message) from None
    if quantity <= 0:
        raise SetError(_l("The quantity of a part must be 1 or more (%(value)s).", value=str(value).strip()))
    if quantity > inventory.MAX_QUANTITY:
        raise SetError(_l("Stock cannot exceed %(max)s.", max=f"{inventory.MAX_QUANTITY:,}"))
    return quantity


@dataclass(frozen=True)
class SetDefinition:
    """A set as checked, ready to write: the set's product and its parts (part id, quantity)."""

    set_id: int
    code: str
    parts: tuple[tuple[int, int], ...]


def check(set_code: str, parts: Sequence[tuple[str, object]], *, becoming_sets: Iterable[str] = ()) -> SetDefinition:
    """Check one set: its product exists and may be a set, and each (part code, quantity) names an ordinary
    product once, with a quantity of 1 or more. `becoming_sets`: codes being made sets in the same change
    (a CSV), which cannot be parts either. Raises SetError with the first problem."""
    becoming = set(becoming_sets)
    product = db.session.scalar(select(Product).where(Product.code == set_code))
    if product is None:
        raise SetError(_l("There is no product with 商品コード “%(code)s”.", code=set_code))
    containing = sets_containing(product.id)
    if containing:
        raise SetError(_l("%(code)s is a part of the set %(set)s: a set cannot be inside a set.",
                          code=set_code, set=containing[0][1]))
    if not parts:
        raise SetError(_l("A set needs at least one part."))
    if product.allocated:
        raise SetError(_l("%(code)s has %(n)s allocated to orders not yet shipped: ship or cancel them before "
                          "making it a set.", code=set_code, n=f"{product.allocated:,}"))
    checked: dict[int, int] = {}
    for code, quantity in parts:
        code = (code or "").strip()
        if not code:
            raise SetError(_l("Enter the product code of each part."))
        if code == set_code:
            raise SetError(_l("%(code)s cannot be a part of itself.", code=code), code)
        part = db.session.scalar(select(Product).where(Product.code == code))
        if part is None:
            raise SetError(_l("There is no product with 商品コード “%(code)s”.", code=code), code)
        if part.is_set or code in becoming:
            raise SetError(_l("%(code)s is a set product: a set cannot be inside a set.", code=code), code)
        if part.id in checked:
            raise SetError(_l("%(code)s is listed twice: give it once, with the number one set takes.", code=code),
                           code)
        try:
            checked[part.id] = parse_part_quantity(quantity)
        except SetError as exc:
            raise SetError(exc.message, code) from None
    return SetDefinition(product.id, product.code, tuple(checked.items()))


def define(set_code: str, parts: Sequence[tuple[str, object]], *, user: Optional[User] = None,
           clear_stock: bool = False) -> SetView:
    """Make the product a set of these parts (or replace the parts of a set), and schedule its listings.
    A product with 在庫数 raises StockWouldBeCleared unless `clear_stock` says the shop agreed."""
    definition = check(set_code, parts)
    write(definition, user=user, clear_stock=clear_stock)
    return view(definition.set_id)


def write(definition: SetDefinition, *, user: Optional[User] = None, clear_stock: bool = False) -> None:
    """Write a checked set: its stock cleared (when agreed), its parts replaced, its listings scheduled."""
    product = inventory.lock_product(definition.set_id)
    if product.allocated:  # an order arrived since the check
        raise SetError(_l("%(code)s has %(n)s allocated to orders not yet shipped: ship or cancel them before "
                          "making it a set.", code=product.code, n=f"{product.allocated:,}"))
    if product.on_hand and not product.is_set:
        if not clear_stock:
            raise StockWouldBeCleared(product.code, product.on_hand)
        inventory.set_stock(product.id, 0, kind=StockChangeKind.CORRECTION, user=user,
                            note=str(_l("Made a set product: its stock now comes from its parts.")))
    db.session.execute(delete(SetPart).where(SetPart.set_id == product.id))
    db.session.execute(insert(SetPart), [
        {"set_id": product.id, "part_id": part_id, "quantity": quantity} for part_id, quantity in definition.parts
    ])
    db.session.execute(update(Product).where(Product.id == product.id).values(is_set=True)
                       .execution_options(synchronize_session=False))
    _reschedule(product)


def dissolve(product_id: int) -> None:
    """Make a set an ordinary product again, with no stock (its listings then push 0 until stock is entered)."""
    product = inventory.lock_product(product_id)
    if not product.is_set:
        raise SetError(_l("%(code)s is not a set product.", code=product.code))
    db.session.execute(delete(SetPart).where(SetPart.set_id == product.id))
    db.session.execute(update(Product).where(Product.id == product.id).values(is_set=False)
                       .execution_options(synchronize_session=False))
    _reschedule(product)


def _reschedule(product: Product) -> None:
    db.session.expire(product)
    inventory.schedule(inventory.pushable_listings(Listing.product_id == product.id))


def write_many(definitions: Mapping[str, SetDefinition], *, user: Optional[User] = None) -> int:
    """Write checked sets (a セット商品CSV), by code; returns how many. All in the caller's transaction."""
    for code in sorted(definitions):
        write(definitions[code], user=user)
    return len(definitions)


def part_candidates(text: str, limit: int = 20) -> list[tuple[str, str]]:
    """Ordinary products whose code or name contains `text` (width and case ignored), as (code, name) by code:
    what the product page offers while a part's code is typed."""
    folded = fold(text.strip())
    if not folded:
        return []
    pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(db.session.execute(
        select(Product.code, Product.name)
        .where(Product.search_text.like(pattern, escape="\\"), Product.is_set.is_(False))
        .order_by(Product.code).limit(limit)))
