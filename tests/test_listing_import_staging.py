"""The import writes the records its preview read, without reading the file again; a stage that is missing,
damaged or made for other choices is not used, and the import reads the file as before."""
from __future__ import annotations

from pathlib import Path

from tatenpo.listings import importer, staging
from tatenpo.models import ImportJob
from tatenpo.platform.extensions import db

from .listing_helpers import listings_of, upload


def stage_of(job_id: int) -> Path:
    job = db.session.get(ImportJob, job_id)
    return Path(job.stored_path).parent / "records.marshal"


def test_the_import_writes_what_the_preview_read_without_reading_the_file_again(app, make):
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        job_id = upload(store.id, "rakuten-normal-item.csv")
        assert stage_of(job_id).exists()
        # Whatever happens to the stored file after the preview, the confirmed rows are the ones imported.
        Path(db.session.get(ImportJob, job_id).stored_path).write_bytes(b"\x00 not a csv any more")
        job = importer.run_job(job_id)
        assert job.status == "done", job.message
        assert job.result["new"] == 4
        assert listings_of(store.id)[("tshirt", "tshirt-red")].title == "㈱髙島屋コラボ Tシャツ① 赤"
        assert not stage_of(job_id).parent.exists()  # removed with the upload


def test_without_its_stage_the_import_reads_the_file(app, make):
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        job_id = upload(store.id, "rakuten-normal-item.csv")
        stage_of(job_id).unlink()
        job = importer.run_job(job_id)
        assert job.status == "done" and job.result["new"] == 4


def test_a_damaged_stage_is_ignored_and_the_file_read(app, make):
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        job_id = upload(store.id, "rakuten-normal-item.csv")
        stage_of(job_id).write_bytes(b"\x07 half a stage")
        job = importer.run_job(job_id)
        assert job.status == "done" and job.result["new"] == 4
        assert listings_of(store.id)[("mug", "normal-inventory")].product.code == "mug"


def test_a_stage_read_for_other_choices_is_not_used(app, make):
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        job_id = upload(store.id, "rakuten-normal-item.csv", first_items=1)
        job = db.session.get(ImportJob, job_id)
        assert staging.load(job, {"forced_format": None, "items": None, "first_items": 1}) is not None
        assert staging.load(job, {"forced_format": None, "items": None, "first_items": None}) is None
        # The shop widens the choice without a new preview: the import reads the whole file again.
        job.options = {**job.options, "first_items": None}
        db.session.commit()
        done = importer.run_job(job_id)
        assert done.status == "done" and done.result["new"] == 4


def test_a_file_with_row_errors_keeps_no_stage(app, make):
    store = make.store(mall="rakuten", auto_sync=False)
    text = "商品管理番号（商品URL）,SKU管理番号,在庫数\r\nmug,normal-inventory,たくさん\r\n"
    with app.app_context():
        job_id = upload(store.id, ("normal-item.csv", text.encode("cp932")))
        assert db.session.get(ImportJob, job_id).error_count == 1
        assert not stage_of(job_id).exists()


def test_a_stage_cut_short_is_ignored_and_the_file_read(app, make):
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        job_id = upload(store.id, "rakuten-normal-item.csv")
        stage = stage_of(job_id)
        stage.write_bytes(stage.read_bytes()[:-20])  # a disk that filled up mid-write, say
        job = importer.run_job(job_id)
        assert job.status == "done" and job.result["new"] == 4
