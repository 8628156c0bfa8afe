"""Searching finds what the shop typed anywhere in a product's or listing's code and name, whatever the width
and case, and takes % and _ as the characters they are — on SQLite and on PostgreSQL alike."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tatenpo.models import Listing, Product
from tatenpo.platform.extensions import db
from tatenpo.stock.search import matches


@pytest.fixture
def catalogue(app, make):
    for code, name in [("TS-RED", "Ｔシャツ 赤"), ("SALE-50%", "半額マグ"), ("A_B", "タオル"), ("AXB", "ﾀｵﾙ ミニ"),
                       ("PATH/1", "㈱髙島屋コラボ")]:
        make.product(code=code, name=name)
    store = make.store()
    make.listing(store, code="SKU-RED", item_code="tshirt", variant_code="red", title="Ｔシャツ① 赤")


def found(app, typed: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(Product.code).where(matches(Product.search_text, typed)).order_by(Product.code)))


@pytest.mark.parametrize("typed, codes", [
    ("tシャツ", ["TS-RED"]),  # full-width Ｔ and case folded
    ("ﾀｵﾙ", ["AXB", "A_B"]),  # half-width katakana found in full-width names (X sorts before _)
    ("ts-red", ["TS-RED"]),
    ("50%", ["SALE-50%"]),  # % is a character, not a wildcard
    ("a_b", ["A_B"]),  # _ too: AXB is not found
    ("path/1", ["PATH/1"]),  # the escape character itself
    ("(株)", ["PATH/1"]),  # ㈱ folded as NFKC folds it
    ("no such thing", []),
])
def test_products_are_found_by_any_part_of_code_or_name(app, catalogue, typed, codes):
    assert found(app, typed) == codes


def test_listings_are_found_by_title_and_codes(app, catalogue):
    with app.app_context():
        for typed in ("シャツ①", "sku-red", "TSHIRT"):
            assert db.session.scalars(select(Listing.code).where(matches(Listing.search_text, typed))).all() == ["SKU-RED"]
