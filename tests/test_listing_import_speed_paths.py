"""The importer's quick paths write exactly what the general rules say: the new rows' search texts (worked out
by the import, not kept with the preview's records), the starting stock's 在庫履歴 (copied from the new products
by the database), the times (sent as text), and a re-import that changes only the stock the mall showed."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from tatenpo.listings import importer, staging, uploads
from tatenpo.listings.bulk import BulkWriter
from tatenpo.models import ImportJob, Product, StockChangeKind, StockHistory, search_key, utcnow
from tatenpo.platform.extensions import db

from .listing_helpers import listings_of, product

HEADER = "商品管理番号（商品URL）,商品番号,商品名,SKU管理番号,システム連携用SKU番号,バリエーション項目キー1,バリエーション項目選択肢1,在庫数\r\n"
LONG = "ながいタイトル" * 90  # 630 characters: cut to the column's 500


def catalog(red: str = "5", blue: str = "青", mug: str = "12") -> tuple[str, bytes]:
    """A normal-item.csv: a product with two SKUs, items without variations, one of them with no stock."""
    rows = [
        "tshirt,TS-001,㈱髙島屋コラボ Ｔシャツ①,,,,,\r\n",
        f"tshirt,,,tshirt-red,TS-RED,color,赤,{red}\r\n",
        f"tshirt,,,tshirt-blue,,color,{blue},0\r\n",
        "mug,MUG-1,マグカップ ＬＡＲＧＥ,,,,,\r\n",
        f"mug,,,normal-inventory,,,,{mug}\r\n",
        f"long,,{LONG},,,,,\r\n",
        "long,,,normal-inventory,,,,\r\n",
        "cap,,キャップ,,,,,\r\n",
        "cap,,,normal-inventory,,,,3\r\n",
    ]
    return ("normal-item.csv", (HEADER + "".join(rows)).encode("cp932"))


def upload(store_id: int, user_id: int, file: tuple[str, bytes]) -> int:
    name, data = file
    job = uploads.save_upload([(name, io.BytesIO(data))], kind="listings", store_id=store_id, user_id=user_id,
                              options={})
    db.session.flush()
    importer.preview_job(job)
    db.session.commit()
    return job.id


def test_new_rows_have_the_search_texts_history_and_times_of_the_general_rules(app, make):
    make.product(code="cap", on_hand=40)  # linked, not created: no history of this import
    user = make.user(email="importer@example.jp")
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        job_id = upload(store.id, user.id, catalog())
        stage = staging.load(db.session.get(ImportJob, job_id), {"forced_format": None, "items": None,
                                                                   "first_items": None})
        assert stage is not None and all(record.folded_title is None for record in stage.records)
        job = importer.run_job(job_id)
        assert job.status == "done", job.message
        listings = listings_of(store.id)
        assert len(listings) == 5
        for listing in listings.values():
            assert listing.search_text == search_key(listing.code, listing.item_code, listing.variant_code,
                                                     listing.title)[:1100]
        assert listings[("long", "normal-inventory")].title == LONG[:500]
        created = db.session.scalars(select(Product).where(Product.code != "cap").order_by(Product.id)).all()
        assert [p.code for p in created] == ["TS-RED", "tshirt-blue", "mug", "long"]
        for made in created:
            assert made.search_text == search_key(made.code, made.name)[:800]
        assert product("mug").search_text == "mug マグカップ large"

        history = db.session.scalars(select(StockHistory).order_by(StockHistory.id)).all()
        # One row per created product with stock, in the products' order: none for 0, none for no stock, none
        # for the product that existed.
        assert [(h.product_id, h.product_code, h.change, h.quantity_after) for h in history] == [
            (product("TS-RED").id, "TS-RED", 5, 5), (product("mug").id, "mug", 12, 12)]
        moment = product("mug").created_at
        for h in history:
            assert (h.kind, h.user_id, h.note, h.created_at) == (
                int(StockChangeKind.LISTING_IMPORT), user.id, importer.import_note(job), moment)
        # The times the rows were sent with are the one moment of the import, as the database stores it.
        red = listings[("tshirt", "tshirt-red")]
        assert red.mall_quantity_at == red.created_at == red.updated_at == moment
        assert listings[("long", "normal-inventory")].mall_quantity_at is None


def test_a_reimport_that_changes_only_the_stock_sets_that_column_alone(app, make):
    user = make.user(email="importer@example.jp")
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        assert importer.run_job(upload(store.id, user.id, catalog())).status == "done"
        before = {key: (l.title, l.search_text, l.code, l.product_id, l.updated_at)
                  for key, l in listings_of(store.id).items()}
        db.session.remove()
        # Next week: red's stock moved; blue's choice was renamed; the rest is as it was.
        job_id = upload(store.id, user.id, catalog(red="6", blue="ネイビー"))
        preview = db.session.get(ImportJob, job_id).preview
        assert preview["counts"]["updated"] == 2 and preview["counts"]["unchanged"] == 3
        assert {s["code"]: s["state"] for s in preview["samples"]} == {"TS-RED": "updated", "tshirt-blue": "updated"}
        started = utcnow()
        job = importer.run_job(job_id)
        assert job.result["updated"] == 2 and job.result["unchanged"] == 3
        after = listings_of(store.id)
        red, blue = after[("tshirt", "tshirt-red")], after[("tshirt", "tshirt-blue")]
        assert red.mall_quantity == 6
        assert (red.title, red.search_text, red.code, red.product_id) == before[("tshirt", "tshirt-red")][:4]
        assert red.mall_quantity_at == red.updated_at == blue.updated_at >= started
        assert blue.title.endswith("ネイビー") and blue.search_text.endswith("ネイビー")
        assert blue.mall_quantity_at == before[("tshirt", "tshirt-blue")][4]  # its stock did not change
        mug = after[("mug", "normal-inventory")]
        assert (mug.title, mug.search_text, mug.code, mug.product_id, mug.updated_at) == before[
            ("mug", "normal-inventory")]


def test_starting_stock_is_booked_only_for_the_products_the_import_created(app, make):
    """PostgreSQL: another transaction may add products while an import writes; they are not the import's.
    (SQLite has one writer at a time: every product above the import's first id is its own.)"""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's concurrent writers")
        bulk = BulkWriter()
        before = bulk.max_id(Product.__table__)
        ours, theirs = Product(code="OURS", name="", on_hand=4), Product(code="THEIRS", name="", on_hand=9)
        db.session.add_all([ours, theirs])
        db.session.flush()
        importer._book_starting_stock(bulk, before, [ours.id], note="n", user_id=None, moment=utcnow())
        booked = db.session.execute(select(StockHistory.product_code, StockHistory.change)).all()
        assert booked == [("OURS", 4)]
        db.session.rollback()
