"""Two people editing one stock at once: a set (「20」) carries the 在庫数 its editor saw, and when another
person saved a different one in between nothing is saved — the row or the product page says so with both
values and offers to apply the typed stock over the new one. Relative changes (+5 / -3) are exact and
always apply."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tatenpo.models import Product, StockHistory
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tests.conftest import PASSWORD

HX = {"HX-Request": "true"}
CONFLICT = "他の人が変更しました"


def _second_person(app, make):
    other = app.test_client()
    make.user(email="other@example.jp")
    assert other.post("/login", data={"email": "other@example.jp", "password": PASSWORD}).status_code == 302
    return other


def _seen(form_html: str) -> str:
    """The 在庫数 the form says its editor saw, as a browser would send it back."""
    found = re.search(r'name="seen" value="(\d*)"', form_html)
    assert found, form_html
    return found.group(1)


def _stock_and_history(app, product_id: int) -> tuple[int, int]:
    with app.app_context():
        on_hand = db.session.get(Product, product_id).on_hand
        return on_hand, db.session.scalar(select(func.count()).select_from(StockHistory))


def test_a_set_overtaken_by_someone_else_saves_nothing_and_the_row_shows_both_values(app, client, auth, make):
    product = make.product(code="A-1", on_hand=5)
    auth.login()
    other = _second_person(app, make)
    mine = client.get(f"/products/{product.id}/stock/edit", headers=HX).get_data(as_text=True)
    theirs = other.get(f"/products/{product.id}/stock/edit", headers=HX).get_data(as_text=True)
    assert _seen(mine) == _seen(theirs) == "5"

    saved = other.post(f"/products/{product.id}/stock", data={"on_hand": "20", "seen": _seen(theirs)}, headers=HX)
    assert saved.status_code == 200 and CONFLICT not in saved.get_data(as_text=True)
    refused = client.post(f"/products/{product.id}/stock", data={"on_hand": "10", "seen": _seen(mine)}, headers=HX)
    row = refused.get_data(as_text=True)
    assert row.lstrip().startswith("<tr") and 'class="stock-row editing"' in row
    assert CONFLICT in row and "現在の在庫数: 20" in row and "あなたの入力: 10" in row and 'role="alert"' in row
    assert 'value="10"' in row and _seen(row) == "20"  # what I typed stays, now over the stock I have been shown
    assert "自分の値を反映（10）" in row
    assert _stock_and_history(app, product.id) == (20, 1)

    applied = client.post(f"/products/{product.id}/stock", data={"on_hand": "10", "seen": _seen(row)}, headers=HX)
    assert CONFLICT not in applied.get_data(as_text=True) and 'class="stock-row editing"' not in applied.get_data(as_text=True)
    assert _stock_and_history(app, product.id) == (10, 2)


def test_on_the_product_page_without_javascript_the_page_comes_back_with_both_values(app, client, auth, make):
    product = make.product(code="A-1", on_hand=5)
    auth.login()
    other = _second_person(app, make)
    mine = client.get(f"/products/{product.id}").get_data(as_text=True)
    theirs = other.get(f"/products/{product.id}").get_data(as_text=True)

    done = other.post(f"/products/{product.id}/stock", data={"on_hand": "20", "seen": _seen(theirs)}, follow_redirects=True)
    assert "A-1 の在庫数を保存しました。" in done.get_data(as_text=True)
    refused = client.post(f"/products/{product.id}/stock", data={"on_hand": "10", "seen": _seen(mine),
                                                                "next": f"/products/{product.id}"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "<html" in page
    assert CONFLICT in page and "現在の在庫数: 20" in page and "あなたの入力: 10" in page
    assert 'id="on-hand">20<' in page  # the page shows the stock as it is now
    assert 'name="on_hand" type="text" inputmode="numeric" value="10"' in page and _seen(page) == "20"
    assert _stock_and_history(app, product.id) == (20, 1)

    applied = client.post(f"/products/{product.id}/stock", data={"on_hand": "10", "seen": _seen(page),
                                                                "next": f"/products/{product.id}"}, follow_redirects=True)
    assert "A-1 の在庫数を保存しました。" in applied.get_data(as_text=True)
    assert _stock_and_history(app, product.id) == (10, 2)


def test_a_listing_row_refuses_an_overtaken_set_the_same_way(app, client, auth, make):
    store = make.store(name="楽天店")
    product = make.product(code="A-1", on_hand=5)
    listing = make.listing(store, product)
    auth.login()
    other = _second_person(app, make)
    mine = client.get(f"/listings/{listing.id}/stock/edit", headers=HX).get_data(as_text=True)
    theirs = other.get(f"/products/{product.id}/stock/edit", headers=HX).get_data(as_text=True)
    other.post(f"/products/{product.id}/stock", data={"on_hand": "20", "seen": _seen(theirs)}, headers=HX)

    row = client.post(f"/listings/{listing.id}/stock", data={"on_hand": "10", "seen": _seen(mine)},
                      headers=HX).get_data(as_text=True)
    assert f'id="listing-{listing.id}"' in row and CONFLICT in row and "現在の在庫数: 20" in row
    assert _stock_and_history(app, product.id) == (20, 1)


def test_relative_changes_are_exact_and_always_apply(app, client, auth, make):
    product = make.product(on_hand=5)
    auth.login()
    other = _second_person(app, make)
    mine = client.get(f"/products/{product.id}/stock/edit", headers=HX).get_data(as_text=True)
    other.post(f"/products/{product.id}/stock", data={"on_hand": "20", "seen": "5"}, headers=HX)
    row = client.post(f"/products/{product.id}/stock", data={"on_hand": "+5", "seen": _seen(mine)},
                      headers=HX).get_data(as_text=True)
    assert CONFLICT not in row
    assert _stock_and_history(app, product.id) == (25, 2)


def test_what_was_typed_comes_back_in_the_row_as_text(app, client, auth, make):
    product = make.product(on_hand=5)
    auth.login()
    row = client.post(f"/products/{product.id}/stock", data={"on_hand": '"<i>x', "seen": "5"},
                      headers=HX).get_data(as_text=True)
    assert "<i>x" not in row  # neither in the box nor in the reason
    assert 'value="&#34;&lt;i&gt;x"' in row and "「&#34;&lt;i&gt;x」は整数ではありません" in row
    assert _stock_and_history(app, product.id) == (5, 0)


def test_set_stock_with_the_stock_seen_refuses_a_changed_one(app, make):
    product = make.product(on_hand=5)
    with app.app_context():
        inventory.set_stock(product.id, 20)
        db.session.commit()
        with pytest.raises(inventory.StockConflict) as refused:
            inventory.set_stock(product.id, 10, expected=5)
        db.session.rollback()
        assert (refused.value.current, refused.value.typed) == (20, 10)
        inventory.set_stock(product.id, 10, expected=20)
        db.session.commit()
    assert _stock_and_history(app, product.id) == (10, 2)
