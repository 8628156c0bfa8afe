"""Searching finds what the shop typed anywhere in a product's or listing's code and name, whatever the width
and case, and takes % and _ as the characters they are — on SQLite and on PostgreSQL alike."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from tatenpo.models import Listing, Product, search_key
from tatenpo.platform.extensions import db
from tatenpo.stock.search import matches
from tests.sql_plans import sqlite_plan, statements_run

ROOT = Path(__file__).resolve().parent.parent


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


# The 商品・在庫 page: a text in few products is looked up in the trigram index (SQLite's FTS5 table; on
# PostgreSQL the planner's choice), a text in many is tested row by row in the page's order. Both give the
# same rows.
SHOP = [("BENCH-000001", "テスト商品 1"), ("BENCH-000002", "りんごジュース 2"), ("BENCH-099999", "Ｔシャツ 赤"),
        ("MUG-10", "マグカップ 白"), ("TOWEL-1", "ﾀｵﾙ ﾃｽﾄ用")]


@pytest.fixture
def shop(app, make):
    for code, name in SHOP:
        make.product(code=code, name=name)


def _codes_on_page(client, typed: str) -> list[str]:
    page = client.get("/products", query_string={"q": typed}).get_data(as_text=True)
    return [code for code, _name in SHOP if f">{code}<" in page]


@pytest.mark.parametrize("typed, codes", [
    ("BENCH-099999", ["BENCH-099999"]),  # one exact code
    ("bench-0999", ["BENCH-099999"]),  # its beginning, in lower case
    ("99999", ["BENCH-099999"]),  # a part inside it
    ("bench", ["BENCH-000001", "BENCH-000002", "BENCH-099999"]),
    ("カップ", ["MUG-10"]),  # Japanese text inside a name
    ("ﾃｽﾄ", ["BENCH-000001", "TOWEL-1"]),  # half-width katakana, full-width in one name and half in the other
    ("ｔシャツ", ["BENCH-099999"]),
    ("白", ["MUG-10"]),  # one character: no trigram, tested row by row
    ("g-1", ["MUG-10"]),
    ("どこにもない", []),  # found nowhere
])
def test_the_stock_page_finds_codes_prefixes_and_words_by_the_index(app, client, auth, shop, typed, codes):
    from tatenpo.stock.search import FEW, MANY, plan

    auth.login()
    assert _codes_on_page(client, typed) == codes
    with app.app_context():
        expected = FEW if db.engine.dialect.name == "sqlite" and len(typed) >= 3 else MANY
        assert plan(typed, db.session.connection()) == expected


def test_without_the_index_the_page_finds_the_same_rows_row_by_row(app, client, auth, shop):
    from tatenpo.stock.search import MANY, PRODUCTS_FTS, plan

    with app.app_context():
        if db.engine.dialect.name == "sqlite":  # as on a database the migration has not reached yet
            db.session.execute(text(f"DROP TABLE {PRODUCTS_FTS}"))
            db.session.commit()
        assert plan("BENCH-099999", db.session.connection()) == MANY
    auth.login()
    assert _codes_on_page(client, "BENCH-099999") == ["BENCH-099999"]
    assert _codes_on_page(client, "ﾃｽﾄ") == ["BENCH-000001", "TOWEL-1"]
    assert _codes_on_page(client, "どこにもない") == []


def test_a_common_word_is_tested_row_by_row_and_a_rare_one_looked_up(app, client, auth):
    from tatenpo.stock.search import FEW, FEW_ROWS, MANY, plan

    with app.app_context():
        db.session.execute(Product.__table__.insert(), [
            {"code": f"C{i:05d}", "name": "テスト", "on_hand": 1, "allocated": 0, "stock_managed": True, "version": 0,
             "search_text": search_key(f"C{i:05d}", "テスト")} for i in range(FEW_ROWS + 1)])
        db.session.commit()
        if db.engine.dialect.name == "sqlite":
            assert plan("ﾃｽﾄ", db.session.connection()) == MANY
            assert plan("c00042", db.session.connection()) == FEW
    auth.login()
    common = client.get("/products?q=ﾃｽﾄ").get_data(as_text=True)
    assert "（2,000件以上）" in common and ">C00000<" in common
    rare = client.get("/products?q=c00042").get_data(as_text=True)
    assert "1件中 1–1件" in rare and ">C00042<" in rare



def test_a_deep_page_of_a_common_word_shows_its_fifty_rows_in_code_order(app, client, auth):
    from tatenpo.stock.search import FEW_ROWS, PRODUCTS_BY_CODE

    with app.app_context():
        # Every other product has the word: page 3 of it is the 101st to 150th of them, in code order.
        names = {i: "テスト" if i % 2 == 0 else "マグ" for i in range(2 * FEW_ROWS + 2)}
        db.session.execute(Product.__table__.insert(), [
            {"code": f"C{i:05d}", "name": name, "on_hand": i, "allocated": 0, "stock_managed": True, "version": 0,
             "search_text": search_key(f"C{i:05d}", name)} for i, name in names.items()])
        db.session.commit()
        engine = db.engine
    auth.login()
    with statements_run(engine, "sellable") as statements:  # the page's rows
        page = client.get("/products?q=ﾃｽﾄ&page=3").get_data(as_text=True)
    shown = [code for code in (f"C{i:05d}" for i in range(2 * FEW_ROWS + 2)) if f">{code}<" in page]
    assert shown == [f"C{i:05d}" for i in range(200, 300, 2)]
    assert "101–150件目" in page
    if engine.dialect.name == "sqlite":
        # The rows tested on the way to page 3 are read from the index of codes with their search texts alone.
        (statement, parameters), = statements
        assert f"SCAN products USING COVERING INDEX {PRODUCTS_BY_CODE}" in sqlite_plan(engine, statement, parameters)

def test_the_index_follows_new_renamed_and_deleted_products(app, client, auth, make):
    kept = make.product(code="KEEP-1", name="古い名前")
    gone = make.product(code="GONE-1", name="消える商品")
    with app.app_context():
        product = db.session.get(Product, kept.id)
        product.name = "新しい名前"
        product.refresh_search_text()
        db.session.delete(db.session.get(Product, gone.id))
        db.session.commit()
    make.product(code="NEW-1", name="届いた商品")
    auth.login()
    assert ">KEEP-1<" in client.get("/products?q=新しい名前").get_data(as_text=True)
    assert ">KEEP-1<" not in client.get("/products?q=古い名前").get_data(as_text=True)
    assert ">GONE-1<" not in client.get("/products?q=消える商品").get_data(as_text=True)
    assert ">NEW-1<" in client.get("/products?q=届いた商品").get_data(as_text=True)


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="SQLite's FTS5 table (PostgreSQL: pg_trgm)")
def test_the_migration_indexes_the_products_already_there(tmp_path):
    from tatenpo.stock.search import PRODUCTS_BY_CODE, PRODUCTS_FTS

    url = "sqlite:///" + str(tmp_path / "old.db")
    env = dict(os.environ, DATABASE_URL=url, TATENPO_INSTANCE=str(tmp_path))

    def flask(*args):
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    flask("db", "upgrade", "0b5c6d7e8f90")  # the revision before the index
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO products (code, name, on_hand, allocated, stock_managed, version, search_text, created_at, "
            "updated_at) VALUES ('OLD-1', 'ﾃｽﾄ', 0, 0, 1, 0, :text, '2026-01-01', '2026-01-01')"),
            {"text": search_key("OLD-1", "ﾃｽﾄ")})
    flask("db", "upgrade")
    with engine.connect() as connection:
        found = connection.execute(text(f"SELECT rowid FROM {PRODUCTS_FTS} WHERE {PRODUCTS_FTS} MATCH '\"テスト\"'"))
        assert found.scalars().all() == [1]
    # The search text is kept in one B-tree, with the code (stock.search.SEARCH_TEXT_INDEXES).
    assert {index["name"]: index["column_names"] for index in inspect(engine).get_indexes("products")} == {
        PRODUCTS_BY_CODE: ["code", "search_text"]}
    engine.dispose()
