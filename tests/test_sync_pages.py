"""在庫同期履歴, the top page and `flask sync …`: what the shop sees about sync, with a real database and Redis.

These need no mall: the gate (no completed application) stops a push before any connector is opened, and
history rows are what the engine writes. Pushes to the sandbox malls are in test_sync_engine.py.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from rq import Queue

from tatenpo.models import Heartbeat, SyncAttempt, SyncEntry, SyncRun, utcnow
from tatenpo.platform import health
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.sync.push import push_store


def _changed_listing(app, make, *, mall="rakuten", quantity=7, **store_fields):
    store = make.store(mall=mall, **store_fields)
    product = make.product(on_hand=0)
    listing = make.listing(store, product)
    with app.app_context():
        inventory.set_stock(product.id, quantity)
        db.session.commit()
    return store, product, listing


def _run_row(app, store, **fields):
    """A finished push with one attempt, as the engine writes it."""
    with app.app_context():
        run = SyncRun(store_id=store.id, trigger="schedule", status=fields.pop("status", "success"), total=1,
                      started_at=utcnow(), finished_at=utcnow())
        db.session.add(run)
        db.session.flush()
        attempt = SyncAttempt(run_id=run.id, store_id=store.id, listing_code=fields.pop("code", "item-a"),
                              product_code="P-A", quantity=fields.pop("quantity", 5), **fields)
        db.session.add(attempt)
        db.session.commit()
        return run.id


def test_a_store_without_a_completed_application_shows_one_cross_with_the_seed_reason(app, make, client, auth):
    store, product, listing = _changed_listing(app, make)
    with app.app_context():
        first = push_store(store.id, "schedule")
        second = push_store(store.id, "schedule")
        assert first.blocked == second.blocked == "tatenpo:not-applied"
        runs = db.session.query(SyncRun).filter_by(store_id=store.id).all()
        # Once per run, and the same blocked state is not written again on every sweep.
        assert len(runs) == 1 and runs[0].status == "blocked" and runs[0].total == 1
        assert db.session.query(SyncAttempt).count() == 0
        assert db.session.query(SyncEntry).filter_by(listing_id=listing.id).one().target_quantity == 7

    auth.login()
    page = client.get("/sync").get_data(as_text=True)
    assert "自動在庫同期申請が完了していません" in page
    assert "自動在庫同期申請が完了しているか" in page  # the third troubleshooting check, marked as the cause
    assert "自動確認: 原因です" in page
    top = client.get("/").get_data(as_text=True)
    assert store.name in top and "自動在庫同期申請が完了していません" in top


def test_a_stopped_store_is_not_pushed_and_says_why_when_asked(app, make):
    store, product, listing = _changed_listing(app, make)
    with app.app_context():
        from tatenpo.models import Store

        db.session.get(Store, store.id).auto_sync = False
        db.session.commit()
        outcome = push_store(store.id, "manual")
        assert outcome.blocked == "tatenpo:sync-off"
        assert db.session.query(SyncEntry).count() == 1


def test_the_history_lists_attempts_with_check_cross_and_reflection(app, make, client, auth):
    store = make.store(name="楽天テスト店")
    _run_row(app, store, code="shirt-red", ok=True, reflected=True, read_back_quantity=5)
    _run_row(app, store, code="shirt-blue", ok=False, message="商品が見つかりません", hint="item", error_code="GE0014")
    _run_row(app, store, code="shirt-green", ok=False, will_retry=True, message="メンテナンス中です")
    auth.login()
    page = client.get("/sync").get_data(as_text=True)
    for text in ("shirt-red", "反映済み", "shirt-blue", "商品が見つかりません", "GE0014", "shirt-green", "再試行"):
        assert text in page
    # The ✗ line names the item check as the cause.
    assert "商品情報が実際のECサイトとタテンポ上で相違が無いか" in page

    only_failed = client.get("/sync?result=ng").get_data(as_text=True)
    assert "shirt-blue" in only_failed and "shirt-red" not in only_failed and "shirt-green" not in only_failed
    retry = client.get("/sync?result=retry").get_data(as_text=True)
    assert "shirt-green" in retry and "shirt-blue" not in retry


def test_bad_filters_show_a_message_and_every_row_instead_of_an_error(app, make, client, auth):
    store = make.store()
    _run_row(app, store, code="kept-row", ok=True)
    auth.login()
    response = client.get("/sync?date=きのう&store=abc&result=maybe")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "kept-row" in page
    assert "日付ではありません" in page and "不明なECサイト" in page


def test_the_date_filter_uses_japan_days(app, make, client, auth):
    # Fixed times that fall on different days in UTC and in Japan (UTC+9), whatever the hour the test runs.
    store = make.store()
    _run_row(app, store, code="early-jst-row", ok=True, created_at=datetime(2026, 1, 1, 20, 0))  # 2026-01-02 05:00 JST
    _run_row(app, store, code="late-jst-row", ok=True, created_at=datetime(2026, 1, 2, 14, 30))  # 2026-01-02 23:30 JST
    _run_row(app, store, code="next-jst-row", ok=True, created_at=datetime(2026, 1, 2, 15, 30))  # 2026-01-03 00:30 JST
    auth.login()
    day = client.get("/sync?date=2026-01-02").get_data(as_text=True)
    assert "early-jst-row" in day and "late-jst-row" in day
    assert "next-jst-row" not in day
    before = client.get("/sync?date=2026-01-01").get_data(as_text=True)
    assert "early-jst-row" not in before


def test_the_csv_export_has_the_filtered_rows_for_excel(app, make, client, auth):
    store = make.store(name="ヤフー店", mall="yahoo")
    _run_row(app, store, code="mug-01", ok=True, quantity=12)
    _run_row(app, store, code="mug-02", ok=False, message="在庫数が不正です")
    auth.login()
    response = client.get("/sync/export.csv?result=ng")
    assert response.mimetype == "text/csv"
    body = response.data.decode("utf-8")
    assert body.startswith("\ufeff")
    assert "mug-02" in body and "在庫数が不正です" in body and "mug-01" not in body
    assert "\r\n" in body


def test_the_history_polls_only_while_a_push_is_in_flight(app, make, client, auth):
    store = make.store()
    auth.login()
    idle_page = client.get("/sync").get_data(as_text=True)
    assert 'hx-trigger="every 5s"' not in idle_page
    assert client.get("/sync", headers={"HX-Request": "true"}).status_code == 286

    with app.app_context():
        db.session.add(SyncRun(store_id=store.id, trigger="manual", status="running", started_at=utcnow()))
        db.session.commit()
    busy_page = client.get("/sync").get_data(as_text=True)
    assert 'hx-trigger="every 5s"' in busy_page
    partial = client.get("/sync", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.get_data(as_text=True)

    with app.app_context():
        db.session.query(SyncRun).update({"status": "success", "finished_at": utcnow()})
        db.session.commit()
    assert client.get("/sync", headers={"HX-Request": "true"}).status_code == 286


def test_sync_now_queues_one_push_per_store(app, make, client, auth, redis_url):
    store, product, listing = _changed_listing(app, make)
    auth.login()
    first = client.post(f"/sync/stores/{store.id}/push", follow_redirects=True).get_data(as_text=True)
    second = client.post(f"/sync/stores/{store.id}/push", follow_redirects=True).get_data(as_text=True)
    assert "同期を開始しました" in first
    assert "すでに同期待ちです" in second
    with app.app_context():
        from tatenpo.platform.redis_conn import redis

        jobs = Queue("sync", connection=redis()).jobs
    assert [(j.func_name, j.args) for j in jobs] == [("tatenpo.jobs.push_store", (store.id, "manual"))]


def test_sync_now_for_an_unknown_store_is_not_found(client, auth):
    auth.login()
    assert client.post("/sync/stores/999/push").status_code == 404


def test_the_top_page_alerts_when_the_scheduler_missed_two_intervals(app, client, auth):
    auth.login()
    assert "自動同期が停止しています" in client.get("/").get_data(as_text=True)  # never ran
    with app.app_context():
        health.beat(health.SCHEDULE_HEARTBEAT)
        db.session.commit()
    assert "自動同期が停止しています" not in client.get("/").get_data(as_text=True)
    with app.app_context():
        stale = utcnow() - timedelta(seconds=2 * app.config["SYNC_INTERVAL_SECONDS"] + 5)
        db.session.get(Heartbeat, health.SCHEDULE_HEARTBEAT).seen_at = stale
        db.session.commit()
    assert "自動同期が停止しています" in client.get("/").get_data(as_text=True)


def test_the_top_page_draws_checks_and_crosses_per_hour(app, make, client, auth):
    store = make.store()
    _run_row(app, store, code="a", ok=True)
    _run_row(app, store, code="b", ok=True)
    _run_row(app, store, code="c", ok=False, message="x")
    auth.login()
    page = client.get("/").get_data(as_text=True)
    assert page.count('class="bar-ok"') == 1 and page.count('class="bar-ng"') == 1
    assert "✓ 2" in page and "✗ 1" in page
    assert "style=" not in page and "<script>" not in page  # the CSP allows neither


def test_sync_status_and_history_in_the_shell(app, make, runner):
    store, product, listing = _changed_listing(app, make)
    with app.app_context():
        push_store(store.id, "schedule")
    result = runner.invoke(args=["sync", "status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["pending"] == 1
    assert data["scheduler"]["stale"] is True
    assert data["stores"][0]["last_run"]["status"] == "blocked"
    history = json.loads(runner.invoke(args=["sync", "history", "--store", str(store.id), "--json"]).output)
    assert history[0]["kind"] == "run" and history[0]["hint"] == "application"
    text = runner.invoke(args=["sync", "status"]).output
    assert "NO RUN FOR TWO INTERVALS" in text


def test_sync_run_in_the_shell_prints_the_run_and_refuses_an_unknown_store(app, make, runner):
    store, product, listing = _changed_listing(app, make)
    result = runner.invoke(args=["sync", "run", "--store", str(store.id), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "blocked"
    missing = runner.invoke(args=["sync", "run", "--store", "999"])
    assert missing.exit_code != 0 and "no store 999" in missing.output


def test_the_top_page_shows_the_seed_checks_beside_a_failing_store(app, make, client, auth):
    make.application(malls=["yahoo"], status="completed")
    store = make.store(mall="yahoo", name="ヤフー本店", consecutive_failures=2, last_error="アクセストークンを拒否しました。")
    make.attempt(store, ok=False, hint="login", message="アクセストークンを拒否しました。")
    auth.login()
    page = client.get("/").get_data(as_text=True)
    section = page[page.index("ヤフー本店"):]
    login_check = section.index("ECサイト設定のログインIDやパスワードに間違いが無いか")
    application_check = section.index("自動在庫同期申請が完了しているか")
    assert "原因です" in section[login_check:application_check]  # the login check is marked as the cause
    assert "問題なし" in section[application_check:application_check + 200]  # the application is 設定完了


def test_the_history_reads_newest_first_by_time_and_finds_failures_behind_many_successes(app, make, client, auth):
    store = make.store(mall="yahoo", name="ヤフー店")
    listing = make.listing(store, make.product(code="P-FAIL"))
    make.attempt(store, listing, ok=False, message="SKUが見つかりません", listing_code="ITEM-NG")
    retry = make.attempt(store, listing, ok=False, will_retry=True, message="混雑しています", listing_code="ITEM-RETRY")
    with app.app_context():
        db.session.execute(SyncAttempt.__table__.insert(), [
            {"run_id": retry.run_id, "store_id": store.id, "listing_id": listing.id, "listing_code": f"OK-{i}",
             "quantity": 1, "ok": True, "will_retry": False, "created_at": utcnow()} for i in range(300)])
        db.session.commit()
    late = make.attempt(store, listing, ok=True, listing_code="ITEM-EARLIER")  # written last, stamped earliest
    with app.app_context():
        db.session.execute(SyncAttempt.__table__.update().where(SyncAttempt.id == late.id)
                           .values(created_at=utcnow() - timedelta(days=3)))
        db.session.commit()
    auth.login()
    page = client.get("/sync").get_data(as_text=True)
    assert "ITEM-EARLIER" not in page  # 300 newer lines come first, though its id is larger
    failed = client.get("/sync?result=ng").get_data(as_text=True)
    assert "ITEM-NG" in failed and "ITEM-RETRY" not in failed and "OK-1<" not in failed
    retried = client.get("/sync?result=retry").get_data(as_text=True)
    assert "ITEM-RETRY" in retried and "ITEM-NG" not in retried
    exported = client.get("/sync/export.csv?result=ng").get_data(as_text=True)
    assert "ITEM-NG" in exported and "OK-1," not in exported


def test_the_failed_filter_follows_each_listings_newest_attempt(app, make, client, auth):
    store = make.store(mall="yahoo", name="ヤフー店")
    fixed, broken = make.product(code="FIXED-1"), make.product(code="BROKEN-1")
    fixed_listing, broken_listing = make.listing(store, fixed), make.listing(store, broken)
    make.attempt(store, fixed_listing, ok=False, message="在庫数が不正です")
    make.attempt(store, fixed_listing, ok=True)  # pushed again since: no longer ✗
    make.attempt(store, broken_listing, ok=True)
    make.attempt(store, broken_listing, ok=False, message="SKUが見つかりません")
    auth.login()
    page = client.get("/products?state=failed").get_data(as_text=True)
    assert ">BROKEN-1<" in page and ">FIXED-1<" not in page
    listings = client.get("/listings?state=failed").get_data(as_text=True)
    assert "SKUが見つかりません" in listings and "在庫数が不正です" not in listings


def test_the_history_shows_fifty_lines_a_page_and_older_ones_page_after_page(app, make, client, auth):
    store = make.store(mall="yahoo", name="ヤフー店")
    listing = make.listing(store, make.product(code="P-PAGE"))
    run_id = make.attempt(store, listing, listing_code="LINE-000").run_id
    with app.app_context():
        start = utcnow() - timedelta(hours=1)
        # 120 lines, two to a second: the pages cut inside one instant too.
        db.session.execute(SyncAttempt.__table__.insert(), [
            {"run_id": run_id, "store_id": store.id, "listing_id": listing.id, "listing_code": f"LINE-{i:03d}",
             "quantity": 1, "ok": True, "will_retry": False, "created_at": start + timedelta(seconds=i // 2)}
            for i in range(1, 121)])
        db.session.execute(SyncAttempt.__table__.update().where(SyncAttempt.listing_code == "LINE-000")
                           .values(created_at=start - timedelta(seconds=1)))
        db.session.commit()
    auth.login()
    seen, address, pages = [], "/sync", 0
    while address:
        page = client.get(address).get_data(as_text=True)
        lines = re.findall(r"<td>(LINE-\d{3})</td>", page)
        assert len(lines) <= 50
        seen += lines
        pages += 1
        found = re.search(r'<a href="([^"]+)" rel="next">さらに古い履歴</a>', page)
        address = found.group(1).replace("&amp;", "&") if found else None
        if pages > 1:
            assert "最新の履歴" in page
    assert pages == 3
    assert seen == [f"LINE-{i:03d}" for i in range(120, -1, -1)]  # every line once, newest first
    bad = client.get("/sync?older=yesterday").get_data(as_text=True)
    assert "履歴の位置ではありません" in bad and "<td>LINE-120</td>" in bad


def test_the_history_escapes_what_shops_and_malls_wrote(app, make, client, auth):
    # The lines are drawn with autoescaping off (templates/sync/_table.html): every text from the shop or a
    # mall must come out escaped by hand — store names, codes, the mall's message and its code.
    store = make.store(name="<b>店</b>")
    make.attempt(store, ok=False, listing_code="<i>item</i>", product_code="<u>P</u>",
                 message="<script>alert(1)</script>", error_code="E<1>", hint="item")
    make.attempt(store, ok=True, listing_code="ok&go", message="<em>済</em>", reflected=False, read_back_quantity=4)
    with app.app_context():
        db.session.add(SyncRun(store_id=store.id, trigger="schedule", status="blocked", total=1234,
                               message="<img src=x>", started_at=utcnow(), finished_at=utcnow()))
        db.session.commit()
    auth.login()
    for address in ("/sync", "/sync?result=ng"):
        page = client.get(address).get_data(as_text=True)
        for raw in ("<script>", "<i>item", "<u>P", "E<1>", "<img src=x>", "<b>店</b></td>"):
            assert raw not in page, (address, raw)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;i&gt;item&lt;/i&gt;" in page
        assert "(E&lt;1&gt;)" in page and "&lt;img src=x&gt;" in page and "&lt;b&gt;店&lt;/b&gt;" in page
        assert "実行全体（1,234 件）" in page  # the run's line, its count filled into the label
    page = client.get("/sync").get_data(as_text=True)
    assert "&lt;u&gt;P&lt;/u&gt;" in page and "ok&amp;go" in page and "&lt;em&gt;済&lt;/em&gt;" in page
    assert "モールの在庫数 4" in page
