"""セット商品 (tatenpo.stock.sets): a set's 販売可能数 is the fewest whole sets its parts allow; a set holds no
stock; every change of a part schedules every listing of every set containing it, in the same transaction;
an order line of a set allocates, ships and returns its parts exactly once; bad sets are refused with the
reason and change nothing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

import pytest
from sqlalchemy import func, select

from tatenpo.models import Listing, Order, Product, SetPart, StockChangeKind, StockHistory, Store, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory, rules, sets


def _targets(listing_ids) -> dict[int, int]:
    rows = db.session.execute(select(SyncEntry.listing_id, SyncEntry.target_quantity)
                              .where(SyncEntry.listing_id.in_(listing_ids))).all()
    return dict(rows)


def test_the_rule_with_several_parts_and_quantities():
    assert rules.set_sellable([(10, 1)]) == 10
    assert rules.set_sellable([(10, 3)]) == 3  # a pack of three: 10 // 3
    assert rules.set_sellable([(10, 3), (5, 1), (9, 2)]) == 3
    assert rules.set_sellable([(10, 3), (5, 2), (9, 2)]) == 2  # the second part limits
    assert rules.set_sellable([(0, 1), (100, 1)]) == 0
    assert rules.set_sellable([(-1, 3), (100, 1)]) == -1  # an oversold part: the set is oversold too
    assert rules.set_sellable([]) == 0


def test_a_sets_sellable_is_the_same_in_python_and_sql(app, make):
    stocks = [(0, 0), (10, 0), (10, 3), (2, 5), (7, 0), (1, 0)]
    parts = [make.product(code=f"PART-{n}", on_hand=on_hand, allocated=allocated)
             for n, (on_hand, allocated) in enumerate(stocks)]
    definitions = {  # set code → [(part index, quantity)]
        "S-1": [(1, 1)], "S-2": [(1, 3)], "S-3": [(1, 3), (2, 2), (4, 1)], "S-4": [(3, 1), (1, 1)],
        "S-5": [(3, 4)], "S-6": [(0, 1), (1, 1)], "S-7": [(5, 2)], "S-8": [(4, 7), (2, 1)],
    }
    for code in definitions:
        make.product(code=code)
    with app.app_context():
        for code, wanted in definitions.items():
            sets.define(code, [(parts[i].code, q) for i, q in wanted])
        db.session.commit()
        rows = db.session.execute(
            select(Product.code, inventory.product_sellable_sql()).order_by(Product.code)).all()
        in_python = {p.code: p.sellable for p in db.session.scalars(select(Product))}
        assert dict(rows) == in_python
        assert {code: in_python[code] for code in definitions} == {
            "S-1": 10, "S-2": 3, "S-3": 3, "S-4": -3, "S-5": -1, "S-6": 0, "S-7": 0, "S-8": 1,
        }
        assert in_python["PART-3"] == -3  # an ordinary product keeps its own rule


def test_a_part_reaching_zero_takes_every_set_containing_it_to_zero_on_every_mall(app, make):
    stores = [make.store(mall=mall) for mall in ("rakuten", "yahoo", "amazon", "shopify")]
    mug = make.product(code="MUG", on_hand=6)
    towel = make.product(code="TOWEL", on_hand=20)
    gift, pack = make.product(code="GIFT-BOX"), make.product(code="MUG-3")
    with app.app_context():
        sets.define("GIFT-BOX", [("MUG", 1), ("TOWEL", "2")])
        sets.define("MUG-3", [("MUG", 3)])
        db.session.commit()
    listings = {(p.code, s.mall): make.listing(s, p).id for p in (mug, gift, pack) for s in stores}
    with app.app_context():
        inventory.set_stock(towel.id, 20)  # touch nothing: the schedule starts empty below
        db.session.query(SyncEntry).delete()
        inventory.set_stock(mug.id, 3)
        db.session.commit()
        assert _targets(listings.values()) == {
            **{listings["MUG", s.mall]: 3 for s in stores},
            **{listings["GIFT-BOX", s.mall]: 3 for s in stores},
            **{listings["MUG-3", s.mall]: 1 for s in stores},
        }
        inventory.set_stock(mug.id, 0)
        db.session.commit()
        assert set(_targets(listings.values()).values()) == {0}
        assert len(_targets(listings.values())) == 12


def test_safety_stock_and_maximum_apply_to_a_sets_listings(app, make):
    store = make.store(safety_stock=2)
    make.product(code="A", on_hand=30)
    make.product(code="SET-A", on_hand=0)
    with app.app_context():
        sets.define("SET-A", [("A", 2)])
        db.session.commit()
    capped = make.listing(store, db_product(app, "SET-A"), max_quantity=5)
    plain = make.listing(store, db_product(app, "SET-A"))
    with app.app_context():
        inventory.adjust_stock(db_product(app, "A").id, "+2")  # 32 → 16 sets, less 2 kept back
        db.session.commit()
        assert _targets([capped.id, plain.id]) == {capped.id: 5, plain.id: 14}
        loaded = db.session.get(Listing, plain.id)
        assert inventory.pushed_quantity(loaded) == 14
        # The other doors to the schedule (an import's listings, a store's settings) read the set's number too.
        db.session.query(SyncEntry).delete()
        states = inventory.pushable_listings(Listing.id.in_([capped.id, plain.id]))
        assert sorted(inventory.pushed_quantity(state) for state in states) == [5, 14]
        assert inventory.schedule_store(db.session.get(Store, store.id)) == 2
        assert _targets([capped.id, plain.id]) == {capped.id: 5, plain.id: 14}


def db_product(app, code) -> Product:
    with app.app_context():
        product = db.session.scalar(select(Product).where(Product.code == code))
        db.session.expunge(product)
        return product


def test_a_set_holds_no_stock_and_its_stock_cannot_be_edited(app, make):
    make.product(code="CUP", on_hand=4)
    box = make.product(code="CUP-BOX")
    with app.app_context():
        sets.define("CUP-BOX", [("CUP", 2)])
        db.session.commit()
        for change in (lambda: inventory.set_stock(box.id, 5), lambda: inventory.adjust_stock(box.id, "+1")):
            with pytest.raises(inventory.StockError, match="CUP-BOX"):
                change()
            db.session.rollback()
        with pytest.raises(inventory.StockError):
            inventory.set_stock_many({box.id: 3}, kind=StockChangeKind.STOCK_CSV)
        db.session.rollback()
        saved = db.session.get(Product, box.id)
        assert (saved.on_hand, saved.allocated, saved.sellable) == (0, 0, 2)


def test_converting_a_product_with_stock_asks_and_records_the_stock_set_to_zero(app, make):
    make.product(code="PLATE", on_hand=9)
    old = make.product(code="PLATE-2", on_hand=7)
    with app.app_context():
        with pytest.raises(sets.StockWouldBeCleared) as asked:
            sets.define("PLATE-2", [("PLATE", 2)])
        assert asked.value.on_hand == 7
        db.session.rollback()
        assert not db.session.get(Product, old.id).is_set
        view = sets.define("PLATE-2", [("PLATE", 2)], clear_stock=True)
        db.session.commit()
        assert (view.sellable, [p.code for p in view.limiting]) == (4, ["PLATE"])
        history = db.session.scalars(select(StockHistory).where(StockHistory.product_id == old.id)).all()
        assert [(h.change, h.quantity_after, h.kind) for h in history] == [(-7, 0, StockChangeKind.CORRECTION)]
        assert db.session.get(Product, old.id).on_hand == 0


@pytest.mark.parametrize("parts, message", [
    ([], "構成商品が1つ以上必要"),  # the messages in the shop's language (Japanese by default)
    ([("NOPE", 1)], "NOPE"),
    ([("BOWL", 0)], "1以上"),
    ([("BOWL", -2)], "1以上"),
    ([("BOWL", "1.5")], "1\\.5"),
    ([("BOWL-SET", 1)], "自身の構成商品"),
    ([("BOWL", 1), ("BOWL", 2)], "2回"),
    ([("OTHER-SET", 1)], "セット商品の中にセット商品は入れられません"),
])
def test_bad_sets_are_refused_with_the_reason_and_change_nothing(app, make, parts, message):
    make.product(code="BOWL", on_hand=3)
    make.product(code="SPOON", on_hand=3)
    target = make.product(code="BOWL-SET")
    make.product(code="OTHER-SET")
    with app.app_context():
        sets.define("OTHER-SET", [("SPOON", 1)])
        db.session.commit()
        with pytest.raises(sets.SetError, match=message):
            sets.define("BOWL-SET", parts)
        db.session.rollback()
        assert not db.session.get(Product, target.id).is_set
        assert db.session.scalar(select(func.count()).select_from(SetPart).where(SetPart.set_id == target.id)) == 0


def test_a_part_of_a_set_cannot_become_a_set(app, make):
    make.product(code="LID", on_hand=3)
    make.product(code="POT", on_hand=3)
    make.product(code="POT-SET")
    with app.app_context():
        sets.define("POT-SET", [("POT", 1)])
        db.session.commit()
        with pytest.raises(sets.SetError, match="セット商品の中にセット商品は入れられません"):
            sets.define("POT", [("LID", 1)])


@dataclass
class Line:
    item_code: str
    quantity: int
    variant_code: str = ""
    choices: str = ""
    title: str = "セット"
    unit_price: Optional[int] = None


@dataclass
class Printed:
    number: str
    lines: list
    ordered_at: Optional[datetime] = None


def test_an_order_for_a_set_allocates_the_parts_once_and_cancelling_returns_them(app, make):
    from tatenpo.orders import book

    store = make.store()
    mug = make.product(code="O-MUG", on_hand=10)
    towel = make.product(code="O-TOWEL", on_hand=10)
    gift = make.product(code="O-GIFT")
    with app.app_context():
        sets.define("O-GIFT", [("O-MUG", 1), ("O-TOWEL", 2)])
        db.session.commit()
    gift_listing = make.listing(store, gift)
    mug_listing = make.listing(store, mug)

    def stock(product):
        saved = db.session.get(Product, product.id, populate_existing=True)
        return saved.on_hand, saved.allocated

    with app.app_context():
        printed = Printed("ORDER-SET-1", [Line(gift_listing.item_code, 2)])
        order = book.record(db.session.get(Store, store.id), printed, source="test").order
        db.session.commit()
        book.record(db.session.get(Store, store.id), printed, source="mail")  # again: nothing moves
        db.session.commit()
        assert stock(mug) == (10, 2) and stock(towel) == (10, 4) and stock(gift) == (0, 0)
        assert db.session.get(Product, gift.id).sellable == 3  # min(8 // 1, 6 // 2)
        assert _targets([gift_listing.id, mug_listing.id]) == {gift_listing.id: 3, mug_listing.id: 8}
        notes = db.session.scalars(select(StockHistory.note).where(StockHistory.order_id == order.id)).all()
        assert len(notes) == 2 and all("O-GIFT" in note for note in notes)
        book.cancel(db.session.get(Order, order.id))
        db.session.commit()
        assert stock(mug) == (10, 0) and stock(towel) == (10, 0) and stock(gift) == (0, 0)
        assert _targets([gift_listing.id]) == {gift_listing.id: 5}


def test_an_unexplained_decrease_on_a_set_listing_booked_as_a_sale_takes_its_parts(app, make):
    from tatenpo.sync import decreases

    store = make.store()
    make.product(code="D-MUG", on_hand=10)
    make.product(code="D-TOWEL", on_hand=3)
    gift = make.product(code="D-GIFT")
    with app.app_context():
        sets.define("D-GIFT", [("D-MUG", 1), ("D-TOWEL", 2)])
        db.session.commit()
    listing = make.listing(store, gift, mall_expected=1, unexplained_decrease=1)
    with app.app_context():
        assert decreases.adopt(listing.id) == 1
        db.session.commit()
        stock = dict(db.session.execute(select(Product.code, Product.on_hand)
                                        .where(Product.code.in_(["D-MUG", "D-TOWEL", "D-GIFT"]))).all())
        assert stock == {"D-MUG": 9, "D-TOWEL": 1, "D-GIFT": 0}
        assert db.session.get(Product, gift.id).sellable == 0


def test_two_parts_of_one_set_changed_at_once_leave_its_listings_at_what_both_allow(app, make, database_url):
    """PostgreSQL: the second change waits for the first's lock on the set, then computes from its committed
    value (without it the second would push min(5, 2) = 2 over the first's 1). SQLite has one writer at a time."""
    import threading
    import time

    from sqlalchemy import text

    if not (database_url or "").startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite serialises every writer")
    store = make.store()
    first_part, second_part = make.product(code="C-1", on_hand=5), make.product(code="C-2", on_hand=5)
    pair = make.product(code="C-SET")
    with app.app_context():
        sets.define("C-SET", [("C-1", 1), ("C-2", 1)])
        db.session.commit()
    listing = make.listing(store, pair)
    written, release, errors = threading.Event(), threading.Event(), []

    def change(product_id, quantity, hold=False):
        try:
            with app.app_context():
                inventory.set_stock(product_id, quantity)
                if hold:
                    written.set()
                    release.wait(30)
                db.session.commit()
        except Exception as exc:  # noqa: BLE001  (reported by the test thread)
            errors.append(exc)

    first = threading.Thread(target=change, args=(first_part.id, 1, True))
    first.start()
    assert written.wait(30)
    second = threading.Thread(target=change, args=(second_part.id, 2))
    second.start()
    with app.app_context():  # the state to wait for: the second change is waiting for a lock the first holds
        deadline = time.monotonic() + 30
        while not db.session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                         "AND datname = current_database()")):
            db.session.rollback()
            assert time.monotonic() < deadline, "the second change never waited"
            time.sleep(0.05)
        db.session.rollback()
    release.set()
    first.join(30)
    second.join(30)
    assert not errors, errors
    with app.app_context():
        assert _targets([listing.id]) == {listing.id: 1}
        assert db.session.get(Product, pair.id).sellable == 1
