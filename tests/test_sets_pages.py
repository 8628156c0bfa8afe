"""セット商品 on the screens and in the shell: 「セット商品にする」 on the product page (parts by code and quantity,
the set's 販売可能数 and the part that limits it, the question before a product's own stock is cleared), the
stock table's set rows (marked, 販売可能数 shown, nothing to edit), the order page's parts of a set line, and
`stock show` / `sets show` of a set."""
from __future__ import annotations

import json
import re

from sqlalchemy import select

from tatenpo.models import Product, SetPart, StockHistory, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.stock import sets


def _product(app, code) -> Product:
    with app.app_context():
        return db.session.scalar(select(Product).where(Product.code == code))


def _form(*parts, **extra):
    return {"part_code": [c for c, _q in parts], "part_quantity": [q for _c, q in parts], **extra}


def test_making_a_product_a_set_on_its_page_shows_its_sellable_and_the_limiting_part(app, client, auth, make):
    store = make.store()
    make.product(code="SOAP", name="石けん", on_hand=10)
    make.product(code="TOWEL", name="タオル", on_hand=3)
    gift = make.product(code="GIFT", name="ギフト箱")
    listing = make.listing(store, gift)
    auth.login()
    page = client.get(f"/products/{gift.id}").get_data(as_text=True)
    assert 'action="/products/%s/set"' % gift.id in page
    response = client.post(f"/products/{gift.id}/set", data=_form(("SOAP", "2"), ("ＴＯＷＥＬ".lower(), "1")))
    assert response.status_code == 400  # a code in full width is no product code: refused, nothing saved
    assert not _product(app, "GIFT").is_set
    response = client.post(f"/products/{gift.id}/set", data=_form(("SOAP", "２"), ("TOWEL", "1"), ("", "")))
    assert response.status_code == 302
    page = client.get(f"/products/{gift.id}").get_data(as_text=True)
    assert re.search(r'id="set-sellable">3<', page)  # min(10 // 2, 3 // 1)
    assert re.search(r'class="limiting".*?TOWEL', page, re.S)
    assert 'id="on_hand"' not in page  # no stock form for a set
    with app.app_context():
        assert db.session.scalar(select(SyncEntry.target_quantity).where(SyncEntry.listing_id == listing.id)) == 3
    part_page = client.get(f"/products/{_product(app, 'SOAP').id}").get_data(as_text=True)
    assert 'id="in-sets"' in part_page and "GIFT" in part_page


def test_converting_a_product_with_stock_asks_first(app, client, auth, make):
    make.product(code="CUP", on_hand=8)
    pair = make.product(code="CUP-2", on_hand=5)
    auth.login()
    response = client.post(f"/products/{pair.id}/set", data=_form(("CUP", "2")))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "set-question" in page and 'name="clear_stock" value="1"' in page and 'value="CUP"' in page
    saved = _product(app, "CUP-2")
    assert (saved.on_hand, saved.is_set) == (5, False)  # the question changed nothing
    response = client.post(f"/products/{pair.id}/set", data=_form(("CUP", "2"), clear_stock="1"))
    assert response.status_code == 302
    saved = _product(app, "CUP-2")
    assert (saved.on_hand, saved.is_set) == (0, True)
    with app.app_context():
        rows = db.session.execute(select(StockHistory.change, StockHistory.quantity_after)
                                  .where(StockHistory.product_id == pair.id)).all()
        assert rows == [(-5, 0)]


def test_the_stock_table_marks_sets_shows_their_sellable_and_refuses_editing_them(app, client, auth, make):
    make.product(code="BAG", on_hand=7)
    make.product(code="BAG-3")
    with app.app_context():
        sets.define("BAG-3", [("BAG", 3)])
        db.session.commit()
    box = _product(app, "BAG-3")
    auth.login()
    page = client.get("/products").get_data(as_text=True)
    row = re.search(r'<tr id="product-%s".*?</tr>' % box.id, page, re.S).group(0)
    assert "set-badge" in row and "set-stock" in row and "stock-edit" not in row
    assert '<td class="num">2</td>' in row  # 7 // 3
    response = client.post(f"/products/{box.id}/stock", data={"on_hand": "5"}, headers={"HX-Request": "true"})
    assert "BAG-3" in response.get_data(as_text=True) and 'role="alert"' in response.get_data(as_text=True)
    assert _product(app, "BAG-3").on_hand == 0


def test_the_part_search_offers_ordinary_products_by_code(app, client, auth, make):
    make.product(code="KNIFE-01", name="ナイフ")
    make.product(code="KNIFE-SET")
    with app.app_context():
        sets.define("KNIFE-SET", [("KNIFE-01", 2)])
        db.session.commit()
    auth.login()
    options = client.get("/products/set-parts?part_code=knife").get_data(as_text=True)
    assert 'value="KNIFE-01"' in options and "KNIFE-SET" not in options  # a set is never offered as a part


def test_dissolving_a_set_makes_it_ordinary_with_no_stock(app, client, auth, make):
    make.product(code="PEN", on_hand=4)
    make.product(code="PEN-2")
    with app.app_context():
        sets.define("PEN-2", [("PEN", 2)])
        db.session.commit()
    pen_set = _product(app, "PEN-2")
    auth.login()
    assert client.post(f"/products/{pen_set.id}/set/dissolve").status_code == 302
    saved = _product(app, "PEN-2")
    assert (saved.is_set, saved.sellable) == (False, 0)
    with app.app_context():
        assert db.session.scalar(select(SetPart.id).where(SetPart.set_id == pen_set.id)) is None


def test_stock_show_and_sets_show_of_a_set(app, runner, make):
    make.product(code="MUG", name="マグ", on_hand=5, allocated=1)
    make.product(code="TOWEL", name="タオル", on_hand=9)
    make.product(code="GIFT", name="ギフト")
    with app.app_context():
        sets.define("GIFT", [("MUG", 1), ("TOWEL", 2)])
        db.session.commit()
    shown = json.loads(runner.invoke(args=["stock", "show", "GIFT", "--json"]).output)
    assert (shown["set"], shown["sellable"]) == (True, 4)
    assert json.loads(runner.invoke(args=["stock", "show", "MUG", "--json"]).output)["set"] is False
    result = runner.invoke(args=["sets", "show", "GIFT", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["sellable"] == 4 and data["limited_by"] == ["MUG", "TOWEL"]
    assert [(p["code"], p["quantity"], p["sellable"], p["allows"]) for p in data["parts"]] == [
        ("MUG", 1, 4, 4), ("TOWEL", 2, 9, 4)]
    refused = runner.invoke(args=["sets", "show", "MUG", "--json"])
    assert refused.exit_code != 0 and "MUG" in refused.output
    refused = runner.invoke(args=["stock", "set", "GIFT", "3"])
    assert refused.exit_code != 0 and "GIFT" in refused.output


def test_the_order_page_shows_a_set_line_with_its_parts(app, client, auth, make):
    from tests.test_sets import Line, Printed
    from tatenpo.models import Store
    from tatenpo.orders import book

    store = make.store()
    make.product(code="B-MUG", on_hand=10)
    make.product(code="B-TOWEL", on_hand=10)
    gift = make.product(code="B-GIFT")
    with app.app_context():
        sets.define("B-GIFT", [("B-MUG", 1), ("B-TOWEL", 2)])
        db.session.commit()
    listing = make.listing(store, gift)
    with app.app_context():
        order = book.record(db.session.get(Store, store.id), Printed("SET-ORDER-9", [Line(listing.item_code, 3)]),
                            source="test").order
        db.session.commit()
        order_id = order.id
    auth.login()
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    parts = re.search(r'<ul class="set-parts-of-line">(.*?)</ul>', page, re.S).group(1)
    assert re.search(r"B-MUG</a>\s*×3", parts) and re.search(r"B-TOWEL</a>\s*×6", parts)
