"""在庫出力 / 在庫取込: Excel-ready export, bulk stock import with preview, all-or-nothing through the
inventory rules (history and sync schedule), and export → import changes nothing."""
from __future__ import annotations

import csv
import io

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from tatenpo.listings import lifecycle, uploads
from tatenpo.models import ImportJob, Product, StockChangeKind, StockHistory, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import queue, redis
from tatenpo.stock import stock_csv

from .listing_helpers import run_worker


def rows_of(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def stock_job(data: bytes, name: str = "stock.csv") -> ImportJob:
    job = uploads.save_upload([(name, io.BytesIO(data))], kind="stock", store_id=None, user_id=None)
    db.session.flush()
    stock_csv.preview_job(job)
    db.session.commit()
    return job


def state() -> tuple:
    products = db.session.execute(select(Product.code, Product.on_hand).order_by(Product.code)).all()
    return products, db.session.scalar(select(func.count()).select_from(StockHistory))


def test_export_is_cp932_for_excel_with_formula_cells_neutralised(app, make):
    make.product(code="A-1", name="㈱髙島屋 ハンカチ①～", on_hand=10, allocated=3)
    make.product(code="=HYPERLINK(1)", name="+danger", on_hand=0)
    make.product(code="@ODD", name="-5 円引き", on_hand=2)
    with app.app_context():
        data = stock_csv.export_csv()
    assert b"\r\n" in data and not data.startswith(b"\xef\xbb\xbf")
    rows = rows_of(data, "cp932")
    assert rows[0] == ["商品コード", "商品名", "在庫数", "引当数", "販売可能数"]
    assert ["A-1", "㈱髙島屋 ハンカチ①～", "10", "3", "7"] in rows
    assert ["'=HYPERLINK(1)", "'+danger", "0", "0", "0"] in rows
    assert ["'@ODD", "'-5 円引き", "2", "0", "2"] in rows


def test_export_in_utf8_with_bom_keeps_characters_cp932_cannot_hold(app, make):
    make.product(code="EMOJI-1", name="ギフト🎁", on_hand=1)
    with app.app_context():
        utf8 = stock_csv.export_csv("utf-8-sig")
        cp932 = stock_csv.export_csv("cp932")
    assert utf8.startswith(b"\xef\xbb\xbf") and "ギフト🎁" in utf8.decode("utf-8-sig")
    assert "ギフト?" in cp932.decode("cp932")


def test_export_then_import_changes_nothing(app, make):
    make.product(code="A-1", name="① 商品", on_hand=10, allocated=3)
    make.product(code="-MINUS", name="=SUM(A1)", on_hand=4)
    with app.app_context():
        before = state()
        job = stock_job(stock_csv.export_csv())
        assert job.status == "previewed" and job.error_count == 0
        assert job.preview["counts"] == {"rows": 2, "changed": 0, "unchanged": 2, "errors": 0}
        stock_csv.run_job(job.id)
        assert state() == before


def test_import_sets_stock_through_the_inventory_rules(app, make):
    product = make.product(code="A-1", on_hand=10)
    make.product(code="B-2", on_hand=5)
    store = make.store(mall="rakuten", auto_sync=True)
    listing = make.listing(store, product=product)
    with app.app_context():
        job = stock_job("商品コード,在庫数\r\nA-1,１，２００\r\nB-2,5\r\n".encode("cp932"))
        assert job.preview["counts"]["changed"] == 1
        assert job.preview["samples"] == [{"row": 2, "code": "A-1", "before": 10, "after": 1200}]
        stock_csv.run_job(job.id)
        assert db.session.scalar(select(Product.on_hand).where(Product.code == "A-1")) == 1200
        history = db.session.scalar(select(StockHistory).where(StockHistory.product_code == "A-1"))
        assert (history.change, history.quantity_after, history.kind) == (1190, 1200, int(StockChangeKind.STOCK_CSV))
        entry = db.session.scalar(select(SyncEntry).where(SyncEntry.listing_id == listing.id))
        assert entry.target_quantity == 1200


@pytest.mark.parametrize(
    "body,row,column,message",
    [
        ("B-2,-1\r\n", 3, "在庫数", "在庫数はマイナスにできません（-1）。"),
        ("B-2,abc\r\n", 3, "在庫数", "「abc」は整数ではありません。"),
        ("B-2,\r\n", 3, "在庫数", "在庫数が空です。"),
        ("NOPE,1\r\n", 3, "商品コード", "商品コード「NOPE」の商品はありません。"),
        ("B-2,1\r\nB-2,2\r\n", 4, "商品コード", "商品コード「B-2」が2回あります：3行目と4行目。"),
        (",1\r\n", 3, "商品コード", "商品コードが空です。"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_set(app, make, body, row, column, message):
    make.product(code="A-1", on_hand=10)
    make.product(code="B-2", on_hand=5)
    with app.app_context():
        before = state()
        job = stock_job(("商品コード,在庫数\r\nA-1,11\r\n" + body).encode("cp932"))
        error = job.errors[0]
        assert (job.error_count, error["row"], error["column"], error["message"]) == (1, row, column, message)
        with pytest.raises(lifecycle.RowsRefused):
            stock_csv.run_job(job.id)
        assert db.session.get(ImportJob, job.id).status == "failed"
        assert state() == before


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "ファイルが空です。"),
        ("商品コード,在庫数\r\n".encode("cp932"), "見出し行だけで、商品の行がありません。"),
        ("コード,数\r\nA,1\r\n".encode("cp932"), "見出し行に「商品コード」の列がありません。"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "画像ファイルです。CSVではありません。"),
    ],
)
def test_an_unusable_stock_file_is_refused_with_the_reason(app, make, data, message):
    make.product(code="A-1", on_hand=10)
    with app.app_context():
        before = state()
        job = stock_job(data)
        assert (job.status, job.message) == ("failed", message)
        assert state() == before


def test_stock_page_exports_and_imports_through_the_worker(app, client, auth, make):
    auth.login()
    make.product(code="A-1", name="マグ①", on_hand=10)
    page = client.get("/imports/stock").get_data(as_text=True)
    assert "在庫出力" in page and "在庫取込" in page
    exported = client.get("/imports/stock/export?encoding=cp932")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    assert ["A-1", "マグ①", "10", "0", "10"] in rows_of(exported.data, "cp932")
    edited = exported.data.replace(b"A-1,", b"A-1,").replace(b",10,0,10", b",25,0,10")
    response = client.post("/imports/stock", data={"files": [(io.BytesIO(edited), "stock.csv")]},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    job_url = response.headers["Location"]
    job_id = int(job_url.rstrip("/").split("/")[-1])
    # The request only stored the file: the worker reads it while the page shows the progress bar.
    with app.app_context():
        assert db.session.get(ImportJob, job_id).status == "previewing"
    waiting = client.get(job_url).get_data(as_text=True)
    assert "プレビューのためにファイルを読み込んでいます" in waiting and "在庫数が変わる商品" not in waiting
    run_worker(app)
    assert client.get(f"/imports/{job_id}/progress").status_code == 286
    preview = client.get(job_url).get_data(as_text=True)
    assert "在庫数が変わる商品" in preview and "25" in preview
    client.post(f"/imports/{job_id}/confirm")
    with app.app_context():
        SimpleWorker([queue("imports")], connection=redis()).work(burst=True)
        assert db.session.scalar(select(Product.on_hand).where(Product.code == "A-1")) == 25
    assert client.get(f"/imports/{job_id}/progress").status_code == 286


def test_a_stock_import_follows_the_inventory_rules_for_every_row(app, make):
    """The whole file goes through inventory.set_stock_many: stock, history rows and sync entries as for a
    hand edit of each product, and nothing for the rows that change nothing."""
    store = make.store(mall="rakuten", auto_sync=True, safety_stock=1)
    stopped = make.store(mall="yahoo", auto_sync=False)
    products = [make.product(code=f"B-{n:03d}", on_hand=5, allocated=n % 3) for n in range(30)]
    listings = [make.listing(store, product=p) for p in products] + [make.listing(stopped, product=products[0])]
    body = "".join(f"B-{n:03d},{n + 10 if n % 5 else 5}\r\n" for n in range(30))  # every fifth unchanged
    with app.app_context():
        job = stock_job(("商品コード,在庫数\r\n" + body).encode("cp932"))
        assert job.preview["counts"]["changed"] == 24
        stock_csv.run_job(job.id)
        stock = dict(db.session.execute(select(Product.code, Product.on_hand)).all())
        assert stock["B-001"] == 11 and stock["B-000"] == 5 and stock["B-029"] == 39
        history = db.session.execute(
            select(StockHistory.product_code, StockHistory.change, StockHistory.quantity_after, StockHistory.kind)
            .order_by(StockHistory.product_code)
        ).all()
        assert len(history) == 24
        assert ("B-001", 6, 11, int(StockChangeKind.STOCK_CSV)) in history
        entries = {e.listing_id: e.target_quantity for e in db.session.scalars(select(SyncEntry))}
        # pushed = 販売可能数 − 保留在庫 for the auto-sync store only; unchanged products are not re-pushed.
        assert entries[listings[1].id] == 11 - 1 - 1
        assert entries[listings[29].id] == 39 - 29 % 3 - 1
        assert listings[0].id not in entries and listings[-1].id not in entries
        assert len(entries) == 24
        versions = dict(db.session.execute(select(Product.code, Product.version)).all())
        assert versions["B-001"] >= 1 and versions["B-000"] == 0


@pytest.mark.parametrize(
    "body,column,message",
    [
        ("TT-0004,1,5\r\n", "", "3 列ありますが、見出し行は 2 列です"),
        ('TT-0004,"1,5"\r\n', "在庫数", "3桁ごとの区切り"),
        ("TT-0004,²\r\n", "在庫数", "整数ではありません"),
        ("TT-0004,٣\r\n", "在庫数", "整数ではありません"),
        ("TT-0004," + "9" * 5000 + "\r\n", "在庫数", "超えて"),
    ],
)
def test_odd_quantities_and_extra_cells_are_row_errors(app, make, body, column, message):
    make.product(code="TT-0004", on_hand=10)
    with app.app_context():
        before = state()
        job = stock_job(("商品コード,在庫数\r\n" + body).encode("utf-8"))
        error = job.errors[0]
        assert (job.error_count, error["row"], error["column"]) == (1, 2, column)
        assert message in error["message"]
        assert state() == before


def test_quoted_thousands_are_read(app, make):
    make.product(code="TT-0004", on_hand=10)
    with app.app_context():
        job = stock_job('商品コード,在庫数\r\nTT-0004,"1,500"\r\n'.encode())
        assert job.error_count == 0 and job.preview["samples"][0]["after"] == 1500


def _upload_folders(app) -> set:
    with app.app_context():
        root = uploads.upload_root()
        return set(root.iterdir()) if root.exists() else set()


def test_a_refused_upload_leaves_no_folder_and_a_huge_number_is_a_row_error(app, client, auth, make):
    make.product(code="TT-0004", on_hand=10)
    auth.login()
    before = _upload_folders(app)
    refused = client.post("/imports/stock", data={"files": [(io.BytesIO("コード,数\r\nA,1\r\n".encode("cp932")), "x.csv")]},
                          content_type="multipart/form-data")
    run_worker(app)  # the worker reads the file and refuses it
    page = client.get(refused.headers["Location"])
    assert page.status_code == 200 and "「商品コード」の列がありません" in page.get_data(as_text=True)
    assert _upload_folders(app) == before
    huge = ("商品コード,在庫数\r\nTT-0004," + "9" * 5000 + "\r\n").encode("cp932")
    response = client.post("/imports/stock", data={"files": [(io.BytesIO(huge), "huge.csv")]},
                           content_type="multipart/form-data")
    run_worker(app)
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and "超えて" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Product.on_hand).where(Product.code == "TT-0004")) == 10
