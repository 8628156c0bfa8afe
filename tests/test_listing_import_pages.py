"""販売取込 in the browser's terms: upload (the request only stores the file) → the preview, read by the worker
behind a progress bar → confirm → RQ job with a progress bar → result; the history, the error report, the
column mapping, and the 未紐付け list."""
from __future__ import annotations

import io

from sqlalchemy import select

from tatenpo.models import ImportJob, Listing, Store, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import queue, redis

from .listing_helpers import fixture, listings_of, product, run_worker, snapshot


def upload(client, store_id, *names, preview=True, **fields):
    """Post the upload form; with `preview`, then let the worker read the file (as it does behind the page's
    progress bar)."""
    data = {"store_id": str(store_id), "files": [(io.BytesIO(fixture(n) if isinstance(n, str) else n[1]),
                                                  n if isinstance(n, str) else n[0]) for n in names]}
    data.update(fields)
    response = client.post("/imports", data=data, content_type="multipart/form-data")
    if preview:
        run_worker(client.application)
    return response


def latest_job(app) -> ImportJob:
    with app.app_context():
        job = db.session.scalar(select(ImportJob).order_by(ImportJob.id.desc()))
        db.session.expunge(job)
        return job


def test_upload_preview_confirm_and_the_job_imports_with_progress(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten", name="楽天本店")
    response = upload(client, store.id, "rakuten-normal-item.csv", create_products="y")
    assert response.status_code == 302
    job = latest_job(app)
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    # The preview: detected format and encoding, the counts, nothing written yet.
    assert "normal-item.csv" in page and "Shift_JIS (CP932)" in page
    assert "新規の販売データ" in page
    assert "まず1〜数商品で試す" in page
    with app.app_context():
        assert db.session.scalar(select(Listing)) is None
    response = client.post(f"/imports/{job.id}/confirm")
    assert response.status_code == 302
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert 'hx-get="/imports/%d/progress"' % job.id in page
    polled = client.get(f"/imports/{job.id}/progress")
    assert polled.status_code == 200  # still queued: keep polling
    run_worker(app)
    polled = client.get(f"/imports/{job.id}/progress")
    assert polled.status_code == 286  # finished: htmx stops polling
    assert "✓" in polled.get_data(as_text=True)
    result = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert "完了" in result
    with app.app_context():
        assert len(listings_of(store.id)) == 4
        assert product("TS-RED").on_hand == 5
    history = client.get("/imports").get_data(as_text=True)
    assert "rakuten-normal-item.csv" in history and "楽天本店" in history


def test_trying_one_item_first_from_the_preview(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    upload(client, store.id, "rakuten-normal-item.csv", create_products="y")
    job = latest_job(app)
    client.post(f"/imports/{job.id}/options", data={"scope": "first", "first_items": "1", "create_products": "y"})
    run_worker(app)
    with app.app_context():
        assert db.session.get(ImportJob, job.id).preview["counts"]["new"] == 2
    client.post(f"/imports/{job.id}/confirm")
    run_worker(app)
    with app.app_context():
        assert set(listings_of(store.id)) == {("tshirt", "tshirt-red"), ("tshirt", "tshirt-blue")}


def test_a_file_with_bad_rows_shows_them_and_cannot_be_confirmed(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    bad = "商品管理番号（商品URL）,SKU管理番号,在庫数\r\nitem-a,sku-1,-5\r\nitem-a,sku-2,abc\r\n".encode("cp932")
    upload(client, store.id, ("bad.csv", bad))
    job = latest_job(app)
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert "在庫数" in page and "マイナス" in page and "「abc」は整数ではありません" in page
    assert "disabled" in page
    with app.app_context():
        before = snapshot()
    client.post(f"/imports/{job.id}/confirm")
    with app.app_context():
        assert db.session.get(ImportJob, job.id).status == "previewed"
        assert snapshot() == before
    report = client.get(f"/imports/{job.id}/errors.csv")
    text = report.data.decode("utf-8-sig")
    assert report.mimetype == "text/csv"
    assert "bad.csv,2,在庫数," in text and "bad.csv,3,在庫数," in text


def test_a_failing_job_is_shown_as_failed_and_changes_nothing(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    upload(client, store.id, "rakuten-normal-item.csv", create_products="y")
    job = latest_job(app)
    # The stored upload disappears before the worker runs (a full disk, a cleaned folder…).
    import shutil
    from pathlib import Path

    shutil.rmtree(Path(job.stored_path).parent)
    client.post(f"/imports/{job.id}/confirm")
    run_worker(app)
    with app.app_context():
        failed = db.session.get(ImportJob, job.id)
        assert failed.status == "failed"
        assert db.session.scalar(select(Listing)) is None
    polled = client.get(f"/imports/{job.id}/progress")
    assert polled.status_code == 286
    assert "もう一度アップロード" in polled.get_data(as_text=True)
    with app.app_context():
        from rq.registry import FailedJobRegistry

        assert FailedJobRegistry(queue=queue("imports")).get_job_ids() == [failed.rq_job_id]


def test_unknown_csv_can_be_mapped_once_and_is_remembered(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    upload(client, store.id, "generic.csv")
    job = latest_job(app)
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert job.status == "failed" and "管理コード" in page  # the file's headers offered in the mapping form
    client.post(f"/imports/{job.id}/mapping", data={"item_code": "管理コード", "variant_code": "枝番", "code": "",
                                                    "title": "品名", "quantity": "在庫"})
    run_worker(app)
    with app.app_context():
        assert db.session.get(ImportJob, job.id).status == "previewed"
        assert db.session.get(Store, store.id).settings["generic_csv"]["item_code"] == "管理コード"
    # The next upload of the same layout is recognised without asking.
    upload(client, store.id, "generic.csv")
    assert latest_job(app).format == "generic"


def test_too_large_and_missing_files_get_a_message_not_a_500(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    response = client.post("/imports", data={"store_id": str(store.id)}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "CSVファイルを選んで" in response.get_data(as_text=True)
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = upload(client, store.id, ("big.csv", b"a,b\r\n" * 1000))
    assert response.status_code == 413
    assert "大きすぎ" in response.get_data(as_text=True)


def test_unlinked_listings_can_be_linked_or_turned_into_products(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten", auto_sync=True)
    existing = make.product(code="MUG-CENTRAL", name="マグカップ（共通）", on_hand=20)
    red = make.listing(store, item_code="tshirt", variant_code="tshirt-red", code="TS-RED", title="Tシャツ 赤", mall_quantity=5)
    mug = make.listing(store, item_code="mug", variant_code="normal-inventory", code="mug", title="マグ")
    page = client.get("/imports/unlinked").get_data(as_text=True)
    assert "TS-RED" in page and "マグ" in page
    found = client.get(f"/imports/unlinked/{mug.id}/search?product_code=マグカップ").get_data(as_text=True)
    assert "MUG-CENTRAL" in found
    client.post(f"/imports/unlinked/{mug.id}/link", data={"product_code": "MUG-CENTRAL"})
    client.post(f"/imports/unlinked/{red.id}/create", data={"code": "TS-RED", "name": "Tシャツ 赤", "on_hand": "５"})
    with app.app_context():
        assert db.session.get(Listing, mug.id).product_id == existing.id
        created = product("TS-RED")
        assert created.on_hand == 5 and db.session.get(Listing, red.id).product_id == created.id
        # Both are now on the sync schedule with the central stock.
        targets = {e.listing_id: e.target_quantity for e in db.session.scalars(select(SyncEntry))}
        assert targets == {mug.id: 20, red.id: 5}
    page = client.get("/imports/unlinked").get_data(as_text=True)
    assert "すべての販売データが商品に紐付いています" in page
    response = client.post(f"/imports/unlinked/{red.id}/link", data={"product_code": "NOPE"}, follow_redirects=True)
    assert "すでに商品に紐付いています" in response.get_data(as_text=True)


def test_the_progress_bar_shows_rows_done_total_and_time_left_while_running(app, client, auth, make):
    from datetime import timedelta

    from tatenpo.listings import progress
    from tatenpo.models import utcnow

    auth.login()
    store = make.store(mall="rakuten")
    upload(client, store.id, "rakuten-normal-item.csv", create_products="y")
    job = latest_job(app)
    with app.app_context():
        running = db.session.get(ImportJob, job.id)
        running.status = "running"
        running.total_rows = 4000
        running.started_at = utcnow() - timedelta(seconds=10)
        db.session.commit()
        progress.Reporter(job.id)("read", 2000, 4000)
    polled = client.get(f"/imports/{job.id}/progress")
    text = polled.get_data(as_text=True)
    assert polled.status_code == 200
    assert "読み込み中：2,000 / 4,000 行" in text and "25%" in text and "残り約30秒" in text
    assert 'hx-trigger="every 1s"' in text
    with app.app_context():
        progress.Reporter(job.id)("write", 3000, 4000)
    text = client.get(f"/imports/{job.id}/progress").get_data(as_text=True)
    assert "保存中：販売データと商品 3,000 / 4,000 件" in text and "87%" in text


def test_a_file_of_another_mall_is_refused_without_offering_a_column_mapping(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    upload(client, store.id, "amazon-listings-en.txt")
    job = latest_job(app)
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert "別のモールです" in page
    assert "CSVの列を指定" not in page


def test_an_import_whose_background_job_vanished_is_shown_as_failed(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    upload(client, store.id, "rakuten-normal-item.csv", create_products="y")
    job = latest_job(app)
    client.post(f"/imports/{job.id}/confirm")
    with app.app_context():
        running = db.session.get(ImportJob, job.id)
        running.status = "running"  # a worker took it, then died; Redis lost the job with it
        db.session.commit()
        from rq.job import Job

        Job.fetch(running.rq_job_id, connection=redis()).delete()
    polled = client.get(f"/imports/{job.id}/progress")
    assert polled.status_code == 286
    assert "何も取り込んでいません" in polled.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ImportJob, job.id).status == "failed"
        assert db.session.scalar(select(Listing)) is None


def test_the_upload_request_only_stores_the_file_and_the_worker_previews_it(app, client, auth, make):
    from pathlib import Path

    from tatenpo.listings import progress

    auth.login()
    store = make.store(mall="rakuten", name="楽天本店")
    response = upload(client, store.id, "rakuten-normal-item.csv", create_products="y", preview=False)
    assert response.status_code == 302
    job = latest_job(app)
    # Nothing was read in the request: the file is stored, the preview queued, nothing staged or counted.
    assert job.status == "previewing" and job.preview == {} and job.format is None and job.total_rows == 0
    assert Path(job.stored_path).exists()
    assert not (Path(job.stored_path).parent / "records.marshal").exists()
    with app.app_context():
        assert queue("imports").get_job_ids() == [job.rq_job_id]
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert "プレビューのためにファイルを読み込んでいます" in page
    assert 'hx-get="/imports/%d/progress"' % job.id in page
    assert f"/imports/{job.id}/confirm" not in page and "新規の販売データ" not in page
    # No worker takes the queue yet: the page says so instead of spinning without a word.
    assert "キュー「imports」" in page
    polled = client.get(f"/imports/{job.id}/progress")
    assert polled.status_code == 200
    # While the worker reads: the share of the file read and the time left.
    with app.app_context():
        progress.Reporter(job.id)(progress.PREVIEW, 450, 1000)
    assert "— 45%" in client.get(f"/imports/{job.id}/progress").get_data(as_text=True)
    run_worker(app)
    polled = client.get(f"/imports/{job.id}/progress")
    assert polled.status_code == 286 and polled.headers["HX-Refresh"] == "true"  # the page reloads to the preview
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert "Shift_JIS (CP932)" in page and "新規の販売データ" in page and f"/imports/{job.id}/confirm" in page
    previewed = latest_job(app)
    assert previewed.status == "previewed" and previewed.preview["counts"]["new"] == 4
    assert (Path(previewed.stored_path).parent / "records.marshal").exists()
    with app.app_context():
        assert db.session.scalar(select(Listing)) is None
    client.post(f"/imports/{job.id}/confirm")
    run_worker(app)
    with app.app_context():
        assert len(listings_of(store.id)) == 4


def test_a_file_the_worker_refuses_is_shown_with_its_reason_and_nothing_is_imported(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    make.listing(store, item_code="mug", variant_code="normal-inventory", code="mug", title="マグ")
    with app.app_context():
        before = snapshot()
    response = upload(client, store.id, ("items.xlsx", b"PK\x03\x04" + b"\x00" * 200), preview=False)
    assert response.status_code == 302
    job = latest_job(app)
    assert job.status == "previewing"
    run_worker(app)
    polled = client.get(f"/imports/{job.id}/progress")
    assert polled.status_code == 286
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert "Excel" in page and "CSV" in page and "失敗" in page
    assert f"/imports/{job.id}/confirm" not in page
    with app.app_context():
        refused = db.session.get(ImportJob, job.id)
        assert refused.status == "failed" and "Excel" in refused.message
        assert snapshot() == before
    # Confirming it anyway does nothing.
    client.post(f"/imports/{job.id}/confirm")
    with app.app_context():
        assert db.session.get(ImportJob, job.id).status == "failed" and snapshot() == before


def test_a_preview_whose_background_job_vanished_is_shown_as_failed(app, client, auth, make):
    from rq.job import Job

    auth.login()
    store = make.store(mall="rakuten")
    upload(client, store.id, "rakuten-normal-item.csv", preview=False)
    job = latest_job(app)
    with app.app_context():
        Job.fetch(job.rq_job_id, connection=redis()).delete()  # a worker took it and died; Redis lost the job
    polled = client.get(f"/imports/{job.id}/progress")
    assert polled.status_code == 286
    assert "プレビューが途中で止まりました" in polled.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ImportJob, job.id).status == "failed"
        assert db.session.scalar(select(Listing)) is None


def test_changing_the_options_previews_again_in_the_worker(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    upload(client, store.id, "rakuten-normal-item.csv", create_products="y")
    job = latest_job(app)
    client.post(f"/imports/{job.id}/options", data={"scope": "first", "first_items": "1", "create_products": "y"})
    waiting = latest_job(app)
    assert waiting.status == "previewing" and waiting.preview == {} and waiting.rq_job_id != job.rq_job_id
    # Not confirmable until the worker has read the file again.
    client.post(f"/imports/{job.id}/confirm")
    assert latest_job(app).status == "previewing"
    run_worker(app)
    assert latest_job(app).preview["counts"]["new"] == 2


def test_a_preview_that_cannot_be_queued_says_so_and_keeps_the_previous_preview(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    working = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "unix:///nonexistent/tatenpo-redis.sock"  # Redis is down
    try:
        response = upload(client, store.id, "rakuten-normal-item.csv", preview=False)
    finally:
        app.config["REDIS_URL"] = working
    assert response.status_code == 302
    job = latest_job(app)
    assert job.status == "failed" and "ジョブキューに接続できません" in job.message
    assert "ジョブキューに接続できません" in client.get(f"/imports/{job.id}").get_data(as_text=True)
    # A preview of a file already previewed: Redis down again, the shop keeps what it saw.
    upload(client, store.id, "rakuten-normal-item.csv", create_products="y")
    job = latest_job(app)
    app.config["REDIS_URL"] = "unix:///nonexistent/tatenpo-redis.sock"
    try:
        page = client.post(f"/imports/{job.id}/options", data={"scope": "first", "first_items": "1",
                                                                "create_products": "y"}, follow_redirects=True)
    finally:
        app.config["REDIS_URL"] = working
    assert "ジョブキューに接続できません" in page.get_data(as_text=True)
    kept = latest_job(app)
    assert kept.status == "previewed" and kept.preview["counts"]["new"] == 4
