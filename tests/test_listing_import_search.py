"""On SQLite the products an import creates go into the FTS5 trigram index (stock/search.py) in one statement
(bulk.BulkWriter.insert): the index holds exactly the products there are, the shop finds them through it, and
an import that rolls back leaves the index as it was."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import select, text

from tatenpo.listings.importer import analyse, write
from tatenpo.models import Product, Store
from tatenpo.platform.extensions import db
from tatenpo.stock.search import FEW, PRODUCTS_FTS, matches, plan

from .listing_helpers import FIXTURES, import_file, snapshot

pytestmark = pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                                reason="SQLite's FTS5 index (PostgreSQL: pg_trgm, kept by the database itself)")


def index_agrees_with_products() -> None:
    """FTS5's own check of an external-content index against its table (raises when they differ)."""
    db.session.execute(text(f"INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rank) VALUES ('integrity-check', 1)"))


def found_by_the_index(typed: str) -> list[str]:
    assert plan(typed, db.session.connection()) == FEW
    return list(db.session.scalars(select(Product.code).where(matches(Product.search_text, typed, indexed=True))
                                   .order_by(Product.code)))


def test_imported_products_are_in_the_index_and_found_through_it(app, make):
    make.product(code="KEPT-1", name="前からある商品")
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        job = import_file(store.id, "rakuten-normal-item.csv")
        assert job.status == "done" and job.result["products_created"] == 4
        index_agrees_with_products()
        assert db.session.execute(text(f"SELECT count(*) FROM {PRODUCTS_FTS}")).scalar() == 5
        assert found_by_the_index("(株)髙島屋") == ["TS-RED", "tshirt-blue"]
        assert found_by_the_index("ステッカー") == ["sticker"]
        assert found_by_the_index("前からある") == ["KEPT-1"]


def test_an_import_rolled_back_leaves_the_index_as_it_was_and_the_next_one_writes(app, make):
    make.product(code="KEPT-1", name="前からある商品")
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        before = snapshot()
        target = db.session.get(Store, store.id)
        analysis = analyse(target, [(FIXTURES / "rakuten-normal-item.csv", "normal-item.csv")])
        write(target, analysis.plan, note="test", user_id=None)
        assert found_by_the_index("ステッカー") == ["sticker"]  # inside the transaction
        db.session.rollback()
        assert snapshot() == before
        index_agrees_with_products()
        assert found_by_the_index("ステッカー") == []
        # The same connection imports again (whatever the rolled-back write left on it is cleared first).
        job = import_file(store.id, "rakuten-normal-item.csv")
        assert job.status == "done" and job.result["products_created"] == 4
        index_agrees_with_products()
        assert found_by_the_index("ステッカー") == ["sticker"]
