"""販売取込 with bad input: a clear message naming the row and column, and nothing written."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import select

from tatenpo.listings import importer, lifecycle
from tatenpo.models import ImportJob
from tatenpo.platform.extensions import db

from .listing_helpers import import_file, snapshot, upload

HEADER = "商品管理番号（商品URL）,商品名,SKU管理番号,在庫数\r\n"


def _job(job_id) -> ImportJob:
    return db.session.get(ImportJob, job_id)


@pytest.fixture
def rakuten(app, make):
    """A Rakuten store that already holds one import, so 'nothing written' is checked against real data."""
    store = make.store(mall="rakuten")
    with app.app_context():
        import_file(store.id, "rakuten-normal-item.csv")
    return store


@pytest.mark.parametrize(
    "name,data,row,words",
    [
        ("empty.csv", b"", None, "ファイルが空です"),
        ("blank.csv", b"\r\n\r\n", None, "ファイルが空です"),
        ("header-only.csv", HEADER.encode("cp932"), 2, "販売データの行がありません"),
        ("photo.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, None, "画像ファイル"),
        ("book.csv", b"PK\x03\x04" + b"\x00" * 50, None, "Excel（.xlsx）"),
        ("binary.csv", b"abc\x00\x01\x02def" * 20, None, "テキストファイルではありません"),
        ("other.csv", "名前,値段\r\nりんご,100\r\n".encode("cp932"), 1, "対応しているモールのファイルではありません"),
        ("stock.csv", "商品コード,商品名,在庫数\r\nA-1,りんご,100\r\n".encode("cp932"), 1, "在庫取込"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(app, rakuten, name, data, row, words):
    with app.app_context():
        before = snapshot()
        job = _job(upload(rakuten.id, (name, data)))
        assert job.status == "failed"
        assert words in job.message
        assert job.errors[0]["row"] == row
        assert snapshot() == before


def test_undecodable_bytes_name_the_line(app, rakuten):
    data = (HEADER + "item-a,ok①,sku-1,1\r\n").encode("cp932") + b"item-b,\x81\x20\x82,sku-2,1\r\n"
    with app.app_context():
        before = snapshot()
        job = _job(upload(rakuten.id, ("broken.csv", data)))
        assert job.status == "failed"
        assert job.errors[0]["row"] == 3
        assert job.message.startswith("3行目に Shift_JIS (CP932) として読めない文字があります")
        assert snapshot() == before


@pytest.mark.parametrize(
    "body,row,column,words",
    [
        ("item-a,名前,sku-1,たくさん\r\n", 2, "在庫数", "「たくさん」は整数ではありません"),
        ("item-a,名前,sku-1,-3\r\n", 2, "在庫数", "在庫数はマイナスにできません（-3）"),
        ("item-a,名前,sku-1,2.5\r\n", 2, "在庫数", "「2.5」は整数ではありません"),
        ("item-a,名前,sku-1,1\r\nitem-a,名前,sku-1,2\r\n", 3, "", "同じ販売データ（item-a / sku-1）が2回あります：3行目と4行目"),
        (",名前,,1\r\n", 2, "商品管理番号（商品URL）", "商品管理番号が空です"),
        ("item-a,名前,sku-1," + "9" * 5000 + "\r\n", 2, "在庫数", "在庫数は99,999,999を超えて"),
        ("item-a,名前,sku-1,100000000\r\n", 2, "在庫数", "在庫数は99,999,999を超えて"),
    ],
)
def test_bad_rows_are_shown_with_row_and_column_and_block_the_import(app, rakuten, body, row, column, words):
    with app.app_context():
        before = snapshot()
        job_id = upload(rakuten.id, ("bad.csv", (HEADER + "item-ok,よい,sku-9,1\r\n" + body).encode("cp932")))
        job = _job(job_id)
        assert job.status == "previewed"
        assert job.error_count == 1
        assert job.preview["counts"]["errors"] == 1
        error = job.errors[0]
        assert (error["row"], error["column"]) == (row + 1, column)
        assert words in error["message"]
        # Confirming anyway is refused as a whole: the good row is not written either.
        with pytest.raises(lifecycle.RowsRefused):
            importer.run_job(job_id)
        job = _job(job_id)
        assert job.status == "failed"
        assert "何も取り込んでいません" in job.message
        assert job.errors[0]["row"] == row + 1
        assert snapshot() == before


def test_missing_key_column_is_named(app, rakuten):
    with app.app_context():
        before = snapshot()
        job = _job(upload(rakuten.id, ("x.csv", "SKU管理番号,在庫数\r\nsku-1,1\r\n".encode("cp932")), format="rakuten-item"))
        assert job.status == "failed"
        assert job.message == "見出し行に「商品管理番号（商品URL）」の列がありません。"
        assert snapshot() == before


def test_a_file_over_the_limit_is_refused_before_it_is_stored(app, rakuten):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    with app.app_context():
        before = snapshot()
        data = (HEADER + "item-a,名前,sku-1,1\r\n" * 60000).encode("cp932")
        with pytest.raises(importer.FileProblem) as refused:
            upload(rakuten.id, ("big.csv", data))
        assert "1 MB" in str(refused.value) and "大きすぎ" in str(refused.value)
        db.session.rollback()
        assert db.session.scalar(select(ImportJob).where(ImportJob.filename == "big.csv")) is None
        assert snapshot() == before


def test_a_file_of_another_mall_is_refused(app, rakuten):
    with app.app_context():
        job = _job(upload(rakuten.id, "amazon-listings-en.txt"))
        assert job.status == "failed"
        assert "別のモールです" in job.message


def test_a_code_longer_than_the_column_is_a_row_error_before_anything_is_written(app, rakuten):
    # A code longer than the product column allows passes parsing but would break the insert on
    # PostgreSQL; we refuse it as a row error instead, before anything is written.
    long_code = "x" * 300
    with app.app_context():
        before = snapshot()
        job = _job(upload(rakuten.id, ("long.csv", (HEADER + f"item-z,名前,{long_code},1\r\n").encode("cp932"))))
        assert job.error_count == 1 and "255文字を超えています" in job.errors[0]["message"]
        assert snapshot() == before


DISK_FULL = "disk full while writing listings (test)"


@contextmanager
def _database_refuses_listing(item_code: str):
    """A trigger that makes the database itself fail the insert of one listing, as a full disk or a lost
    connection would: the import has written products, their stock history and the listings before it."""
    dialect = db.engine.dialect.name
    with db.engine.begin() as connection:
        if dialect == "postgresql":
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_listing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.item_code = '{item_code}' THEN RAISE EXCEPTION '{DISK_FULL}'; END IF; RETURN NEW; END $$")
            connection.exec_driver_sql("CREATE TRIGGER refuse_listing BEFORE INSERT ON listings "
                                       "FOR EACH ROW EXECUTE FUNCTION refuse_listing()")
        else:
            connection.exec_driver_sql(
                f"CREATE TRIGGER refuse_listing BEFORE INSERT ON listings WHEN NEW.item_code = '{item_code}' "
                f"BEGIN SELECT RAISE(ABORT, '{DISK_FULL}'); END")
    try:
        yield
    finally:
        # On PostgreSQL the schema outlives the test (tables are only emptied): the trigger must go.
        db.session.rollback()
        with db.engine.begin() as connection:
            if dialect == "postgresql":
                connection.exec_driver_sql("DROP TRIGGER refuse_listing ON listings")
                connection.exec_driver_sql("DROP FUNCTION refuse_listing()")
            else:
                connection.exec_driver_sql("DROP TRIGGER refuse_listing")


def test_a_database_failure_mid_import_changes_nothing_and_is_recorded(app, rakuten):
    # Five new items, each with a new product: the database fails on the third listing, after the five
    # products, their 在庫履歴 and two listings were written in the import's transaction.
    rows = "".join(f"item-z{n},名前{n},sku-z{n},{n}\r\n" for n in range(1, 6))
    with app.app_context():
        job_id = upload(rakuten.id, ("five.csv", (HEADER + rows).encode("cp932")))
        assert _job(job_id).status == "previewed" and _job(job_id).preview["counts"]["new"] == 5
        before = snapshot()
        with _database_refuses_listing("item-z3"), pytest.raises(Exception, match="disk full"):
            importer.run_job(job_id)
        db.session.expire_all()
        assert snapshot() == before
        job = _job(job_id)
        assert job.status == "failed"
        assert job.message.startswith("取込に失敗したため、何も変更していません")
        assert DISK_FULL in job.message


def test_a_job_whose_file_is_gone_fails_visibly(app, rakuten):
    with app.app_context():
        job_id = upload(rakuten.id, "rakuten-normal-item.csv")
        import shutil
        from pathlib import Path

        shutil.rmtree(Path(_job(job_id).stored_path).parent)
        before = snapshot()
        with pytest.raises(importer.FileProblem):
            importer.run_job(job_id)
        job = _job(job_id)
        assert job.status == "failed" and "もう一度アップロードしてください" in job.message
        assert snapshot() == before


def test_a_relative_yahoo_quantity_is_refused_with_its_row(app, make):
    store = make.store(mall="yahoo")
    data = "code,sub-code,quantity,mode\r\nitem-1,,5,\r\nitem-2,,3,+\r\n".encode("cp932")
    with app.app_context():
        job = db.session.get(ImportJob, upload(store.id, ("quantity.csv", data)))
        assert (job.error_count, job.errors[0]["row"], job.errors[0]["column"]) == (1, 3, "mode")
        assert "増減" in job.errors[0]["message"]


def test_legacy_items_with_stock_per_choice_need_select_csv(app, make):
    store = make.store(mall="rakuten-ftp")
    with app.app_context():
        job = db.session.get(ImportJob, upload(store.id, "dl-item.csv"))
        assert job.error_count == 0
        skipped = job.preview["skipped"]
        assert any("select.csv も一緒に" in reason for reason in skipped)
        assert job.preview["counts"]["new"] == 1  # cap only; hoodie keeps its stock in select.csv
