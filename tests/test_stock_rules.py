"""The stock rules (tatenpo.stock.rules): the Python and SQL forms give the same answers on every combination
of stock, 保留在庫, maximum and sync flags; a sale beyond the stock shows a negative 販売可能数 and pushes 0;
a listing of a 在庫管理しない product is not synced, and its badge says so."""
from __future__ import annotations

import itertools

from sqlalchemy import select

from tatenpo.models import Listing, Product, Store, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory, rules, stock_csv
from tatenpo.sync import listing_state

STOCKS = [(0, 0), (5, 0), (5, 3), (3, 5), (10, 10), (8, 1)]  # (在庫数, 引当数); 3 − 5 is a 売り越し
SAFETY_STOCKS = [0, 2, 7]
MAXIMA = [None, 0, 1, 4]
FLAGS = [True, False]


def _grid() -> None:
    """Every combination as rows: each product (stock × 在庫管理) on each store (保留在庫 × 使用中/停止中), once
    per maximum and sync flag; plus an unlinked listing per store and sync flag."""
    products = [
        Product(code=f"G-{n}", name="", on_hand=on_hand, allocated=allocated, stock_managed=managed)
        for n, ((on_hand, allocated), managed) in enumerate(itertools.product(STOCKS, FLAGS))
    ]
    stores = [
        Store(mall="rakuten", name=f"店{n}", safety_stock=safety, auto_sync=auto_sync)
        for n, (safety, auto_sync) in enumerate(itertools.product(SAFETY_STOCKS, FLAGS))
    ]
    db.session.add_all(products + stores)
    db.session.flush()
    listings = []
    for store in stores:
        for product, maximum, enabled in itertools.product(products + [None], MAXIMA, FLAGS):
            if product is None and maximum is not None:
                continue
            code = f"L-{len(listings)}"
            listings.append(Listing(store_id=store.id, product_id=product.id if product else None, item_code=code,
                                    code=code, sync_enabled=enabled, max_quantity=maximum))
    db.session.add_all(listings)
    db.session.flush()


def test_sellable_is_the_same_in_python_and_sql(app):
    with app.app_context():
        _grid()
        rows = db.session.execute(
            select(Product.code, Product.on_hand, Product.allocated,
                   rules.sellable_sql(Product.on_hand, Product.allocated))
        ).all()
        assert len(rows) == len(STOCKS) * len(FLAGS)
        assert [(code, in_sql) for code, _, _, in_sql in rows] == [
            (code, rules.sellable(on_hand, allocated)) for code, on_hand, allocated, _ in rows
        ]
        assert {in_sql for *_, in_sql in rows} >= {-2, 0}


def test_is_pushed_is_the_same_in_python_and_sql(app):
    with app.app_context():
        _grid()
        rows = db.session.execute(
            select(Listing.code, Listing.product_id, Listing.sync_enabled, Product.stock_managed, Store.auto_sync,
                   rules.is_pushed_sql(Listing.product_id, Listing.sync_enabled, Product.stock_managed,
                                       Store.auto_sync).label("pushed"))
            .select_from(Listing)
            .outerjoin(Product, Product.id == Listing.product_id)
            .join(Store, Store.id == Listing.store_id)
        ).all()
        in_sql = [(code, bool(pushed)) for code, *_, pushed in rows]
        in_python = [
            (code, rules.is_pushed(product_id is not None, enabled, bool(managed), auto_sync))
            for code, product_id, enabled, managed, auto_sync, _ in rows
        ]
        assert in_sql == in_python
        assert {pushed for _, pushed in in_sql} == {True, False}


def test_quantity_to_push_is_the_same_in_python_and_sql(app):
    with app.app_context():
        _grid()
        sellable = rules.sellable_sql(Product.on_hand, Product.allocated)
        rows = db.session.execute(
            select(Listing.code, Product.on_hand, Product.allocated, Store.safety_stock, Listing.max_quantity,
                   rules.quantity_to_push_sql(sellable, Store.safety_stock, Listing.max_quantity))
            .join(Product, Product.id == Listing.product_id)
            .join(Store, Store.id == Listing.store_id)
        ).all()
        in_sql = [(code, quantity) for code, *_, quantity in rows]
        in_python = [
            (code, rules.quantity_to_push(rules.sellable(on_hand, allocated), safety, maximum))
            for code, on_hand, allocated, safety, maximum, _ in rows
        ]
        assert in_sql == in_python
        assert {quantity for _, quantity in in_sql} >= {0, 1, 4, 7}


def test_quantity_to_push_is_never_negative_and_never_above_the_maximum():
    assert rules.quantity_to_push(-3, 0, None) == 0
    assert rules.quantity_to_push(7, 2, None) == 5
    assert rules.quantity_to_push(7, 9, None) == 0
    assert rules.quantity_to_push(7, 2, 4) == 4
    assert rules.quantity_to_push(7, 2, 0) == 0


def test_a_sale_beyond_the_stock_shows_a_negative_sellable_and_pushes_zero(app, client, auth, make):
    store = make.store(auto_sync=True)
    product = make.product(code="OVER-1", on_hand=2, allocated=5)  # three more sold than there are
    listing = make.listing(store, product)
    with app.app_context():
        oversold = db.session.get(Product, product.id)
        assert oversold.sellable == -3
        assert "OVER-1,テスト商品,2,5,-3\r\n" in stock_csv.export_csv("utf-8-sig").decode("utf-8-sig")
        inventory.set_stock(product.id, 2)  # a stock change schedules the listing anew
        db.session.commit()
        assert db.session.scalar(select(SyncEntry.target_quantity).where(SyncEntry.listing_id == listing.id)) == 0
    auth.login()
    assert "<td class=\"num\">-3</td>" in client.get("/products").get_data(as_text=True)
    detail = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert "<dd>-3</dd>" in detail and '<td class="num">0</td>' in detail  # 販売可能数, and what is pushed


def test_the_badge_of_a_listing_of_a_product_whose_stock_is_not_managed_says_not_synced(app, client, auth, make):
    store = make.store(auto_sync=True)
    product = make.product(code="FREE-1", on_hand=5, stock_managed=False)
    listing = make.listing(store, product)
    with app.app_context():
        loaded = db.session.get(Listing, listing.id)
        assert listing_state.states([loaded])[listing.id].state == listing_state.OFF
        assert inventory.pushed_quantity(loaded) is None
    auth.login()
    for url in ("/products", f"/products/{product.id}", f"/products/{product.id}/row", "/listings"):
        page = client.get(url, headers={"HX-Request": "true"} if url.endswith("/row") else {}).get_data(as_text=True)
        assert 'data-state="off"' in page and 'data-state="never"' not in page, url


def test_a_sets_sellable_is_the_same_in_python_and_sql(app, make):
    """A set's rule (the fewest whole sets its parts allow, rounding down, negative parts included) agrees in
    Python (Product.sellable, rules.set_sellable) and SQL (inventory.product_sellable_sql), and so does the
    quantity pushed for its listings."""
    from sqlalchemy import literal

    from tatenpo.stock import sets

    with app.app_context():
        pairs = [(n, d) for n in range(-7, 8) for d in (1, 2, 3)]
        in_sql = db.session.execute(select(*[rules.floor_div_sql(literal(n), literal(d)) for n, d in pairs])).one()
        assert list(in_sql) == [n // d for n, d in pairs]
    stores = [make.store(safety_stock=safety) for safety in SAFETY_STOCKS]
    parts = [make.product(code=f"PART-{n}", on_hand=on_hand, allocated=allocated)
             for n, (on_hand, allocated) in enumerate(STOCKS)]
    shapes = [[(0, 1)], [(1, 3)], [(1, 2), (2, 1)], [(3, 1), (5, 2)], [(3, 4)], [(4, 3), (5, 1), (2, 2)]]
    for n in range(len(shapes)):
        product = make.product(code=f"SET-{n}")
        for store in stores:
            for maximum in MAXIMA:
                make.listing(store, product, max_quantity=maximum)
    with app.app_context():
        for n, shape in enumerate(shapes):
            sets.define(f"SET-{n}", [(parts[i].code, q) for i, q in shape])
        db.session.commit()
        sellable = inventory.product_sellable_sql()
        rows = db.session.execute(
            select(Product.code, sellable,
                   rules.quantity_to_push_sql(sellable, Store.safety_stock, Listing.max_quantity),
                   Store.safety_stock, Listing.max_quantity)
            .join(Listing, Listing.product_id == Product.id).join(Store, Store.id == Listing.store_id)
        ).all()
        python = {p.code: p.sellable for p in db.session.scalars(select(Product))}
        assert {(code, in_sql) for code, in_sql, *_ in rows} == {(c, python[c]) for c, *_ in rows}
        assert [quantity for _c, _s, quantity, _k, _m in rows] == [
            rules.quantity_to_push(python[code], safety, maximum) for code, _s, _q, safety, maximum in rows]
        assert {python[f"SET-{n}"] for n in range(len(shapes))} >= {-2, 0, 1, 2}
        assert [python[f"SET-{n}"] for n in range(len(shapes))] == [
            rules.set_sellable((parts[i].on_hand - parts[i].allocated, q) for i, q in shape) for shape in shapes]
