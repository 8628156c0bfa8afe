"""資格情報の有効期限 (issue 13): each mall's rule, renewal dates, the 14-day notices on the top page, the store list
and the setup guide, the reminder mails at 14, 7 and 1 day(s) (each once), the clear ✗ of an expired key on a
push and on the connection test (接続テスト), and the upgrade that leaves existing stores with unknown dates."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import policy
from email.parser import BytesParser

import pytest
from sqlalchemy import create_engine, select, text, update

from tatenpo import jobs, malls
from tatenpo.malls.base import HINT_LOGIN, MallError
from tatenpo.models import Store, SyncAttempt, SyncRun, User, utcnow
from tatenpo.platform import mail
from tatenpo.platform.extensions import db
from tatenpo.setup import credential_dates, credential_reminders
from tatenpo.sync.push import push_store

from .sandbox_helpers import MailSink
from .test_migrations import _empty_database, _flask
from .test_sync_engine import Shop


def _expiring_in(app, make, days: float, mall="rakuten", name=None, **fields):
    secrets = {"rakuten": {"service_secret": "s", "license_key": "k"},
               "yahoo": {"seller_id": "snbx-1", "client_id": "c", "client_secret": "s", "refresh_token": "r"},
               "amazon": {"seller_id": "A1", "client_id": "c", "client_secret": "s", "refresh_token": "r"}}[mall]
    return make.store(mall=mall, name=name, secrets=secrets, credentials_renewed_at=utcnow() - timedelta(days=80),
                      credentials_expire_at=utcnow() + timedelta(days=days), **fields)


def _set(app, store_id, **values):
    with app.app_context():
        db.session.execute(update(Store).where(Store.id == store_id).values(**values))
        db.session.commit()


def _row(app, store_id) -> Store:
    with app.app_context():
        store = db.session.get(Store, store_id)
        db.session.expunge(store)
        return store


# --- the malls' rules -------------------------------------------------------------------------------------------

def test_each_mall_declares_its_expiring_credential_and_how_long_it_lasts():
    rules = {key: malls.mall(key).credential_lifetime for key in malls.keys()}
    assert (rules["rakuten"].field, rules["rakuten"].days) == ("license_key", 90)
    assert (rules["yahoo"].field, rules["yahoo"].days) == ("refresh_token", 28)
    assert (rules["amazon"].field, rules["amazon"].days) == ("refresh_token", 365)
    assert rules["shopify"] is None  # a custom app's Admin API token does not expire
    assert rules["rakuten-ftp"] is None
    for key, rule in rules.items():  # the field is one the settings form asks for
        if rule is not None:
            assert rule.field in {f.key for f in malls.credential_fields(key)}


@pytest.mark.parametrize("mall, days", [("rakuten", 90), ("yahoo", 28), ("amazon", 365), ("shopify", None)])
def test_a_renewal_records_now_and_the_expiry_by_the_malls_rule(app, mall, days):
    now = datetime(2026, 12, 1, 3, 0)
    store = Store(mall=mall, name="S", credentials_reminded_days=7)
    credential_dates.note_renewal(store, now=now)
    assert store.credentials_renewed_at == now
    assert store.credentials_expire_at == (now + timedelta(days=days) if days else None)
    assert store.credentials_reminded_days is None  # the reminders start over for the new credential


def test_a_date_the_mall_returned_wins_over_the_rule_and_is_kept_in_naive_utc(app):
    store = Store(mall="amazon", name="S")
    returned = datetime(2027, 6, 30, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    credential_dates.note_renewal(store, expires_at=returned, now=datetime(2026, 12, 1))
    assert store.credentials_expire_at == datetime(2027, 6, 30, 0, 0)


def test_a_typed_expiry_day_lasts_through_that_day_in_japan(app):
    store = Store(mall="rakuten", name="S")
    credential_dates.set_expiry(store, datetime(2027, 3, 31).date())
    assert store.credentials_expire_at == datetime(2027, 3, 31, 14, 59, 59)  # 23:59:59 JST
    assert credential_dates.expiry_day(store) == datetime(2027, 3, 31).date()


def test_days_left_round_up_and_count_expired_as_zero_or_less():
    now = datetime(2026, 12, 1)
    assert credential_dates.days_left(now + timedelta(days=10), now) == 10
    assert credential_dates.days_left(now + timedelta(days=10, hours=1), now) == 11
    assert credential_dates.days_left(now + timedelta(hours=1), now) == 1
    assert credential_dates.days_left(now, now) == 0
    assert credential_dates.days_left(now - timedelta(hours=1), now) == -1


def test_only_the_smallest_reminder_reached_is_due_and_each_only_once(app):
    now = datetime(2026, 12, 1)
    store = Store(mall="rakuten", name="S", credentials_expire_at=now + timedelta(days=20))
    assert credential_dates.due_reminder(store, now) is None
    store.credentials_expire_at = now + timedelta(days=14)
    assert credential_dates.due_reminder(store, now) == 14
    store.credentials_reminded_days = 14
    assert credential_dates.due_reminder(store, now) is None
    store.credentials_expire_at = now + timedelta(days=5)  # also: first entered 5 days before: 7, not 14 and 7
    assert credential_dates.due_reminder(store, now) == 7
    store.credentials_reminded_days = 7
    store.credentials_expire_at = now + timedelta(hours=20)
    assert credential_dates.due_reminder(store, now) == 1
    store.credentials_reminded_days = 1
    assert credential_dates.due_reminder(store, now) is None
    store.credentials_expire_at = now - timedelta(hours=1)
    store.credentials_reminded_days = None
    assert credential_dates.due_reminder(store, now) is None  # expired: the pages and the push say so instead


# --- pages -------------------------------------------------------------------------------------------------------

def test_a_store_expiring_in_10_days_shows_on_the_top_page_the_store_list_and_the_guide(client, auth, app, make):
    auth.login()
    store = _expiring_in(app, make, 10, name="期限間近の楽天店")
    later = _expiring_in(app, make, 40, name="まだ先の楽天店")
    day = credential_dates.expiry_of(_row(app, store.id)).expires_on.strftime("%Y/%m/%d")
    for url in ("/", "/settings/stores", "/guide"):
        page = client.get(url).get_data(as_text=True)
        assert 'id="credential-expiry"' in page, url
        assert f'id="credential-expiry-{store.id}"' in page and f'id="credential-expiry-{later.id}"' not in page, url
        assert "期限間近の楽天店" in page and "RMS licenseKey" in page and day in page and "あと10日" in page, url
        assert f'href="/settings/stores/{store.id}#credential-expiry-field"' in page, url


def test_nothing_is_shown_when_no_credential_expires_soon(client, auth, app, make):
    auth.login()
    _expiring_in(app, make, 40)
    make.store(mall="shopify", secrets={"shop": "s", "access_token": "t"})
    assert 'id="credential-expiry"' not in client.get("/").get_data(as_text=True)


def test_an_expired_credential_is_a_clear_cross_with_the_way_to_renew(client, auth, app, make):
    auth.login()
    store = _expiring_in(app, make, -2, name="切れた店")
    page = client.get("/").get_data(as_text=True)
    assert f'id="credential-expiry-{store.id}"' in page and 'role="alert"' in page
    assert "✗ 切れた店" in page and "有効期限が" in page and "切れています" in page
    assert "WEB APIサービス" in page and f"/settings/stores/{store.id}#credential-expiry-field" in page


def test_staff_see_the_notice_and_are_told_to_ask_an_administrator(client, auth, app, make):
    auth.login(email="staff-only@example.jp", role="staff")
    store = _expiring_in(app, make, 3)
    page = client.get("/").get_data(as_text=True)
    assert f'id="credential-expiry-{store.id}"' in page and "管理者に" in page
    assert f"/settings/stores/{store.id}#credential-expiry-field" not in page


# --- reminder mails ------------------------------------------------------------------------------------------------

def _eml(app) -> list[mail.StoredMessage]:
    with app.app_context():
        return mail.outbox()


def test_reminders_go_at_14_7_and_1_days_each_once_to_every_active_administrator(app, make):
    admin = make.user(email="owner@example.jp", role="admin")
    make.user(email="english-admin@example.jp", role="admin", locale="en")
    make.user(email="staff@example.jp", role="staff")
    gone = make.user(email="gone@example.jp", role="admin")
    with app.app_context():
        db.session.execute(update(User).where(User.id == gone.id).values(disabled_at=utcnow()))
        db.session.commit()
    store = _expiring_in(app, make, 10, name="楽天本店")
    _expiring_in(app, make, 30)  # not yet

    with app.app_context():
        first = jobs.remind_expiring_credentials()
        again = jobs.remind_expiring_credentials()  # the same day: nothing more
    assert sorted(s["to"] for s in first["sent"]) == ["english-admin@example.jp", "owner@example.jp"]
    assert {s["days"] for s in first["sent"]} == {14} and again["sent"] == []
    mails = _eml(app)
    assert len(mails) == 2
    ja = next(m for m in mails if m.to == admin.email)
    assert "【タテンポ】" in ja.subject and "楽天本店" in ja.subject and "あと10日" in ja.subject
    assert "RMS licenseKey" in ja.body and "システム設定 › 共通設定 › ECサイト › 楽天本店" in ja.body
    assert "WEB APIサービス" in ja.body
    en = next(m for m in mails if m.to == "english-admin@example.jp")
    assert "expires in 10 day(s)" in en.subject

    _set(app, store.id, credentials_expire_at=utcnow() + timedelta(days=6))
    with app.app_context():
        assert {s["days"] for s in jobs.remind_expiring_credentials()["sent"]} == {7}
        assert jobs.remind_expiring_credentials()["sent"] == []
    _set(app, store.id, credentials_expire_at=utcnow() + timedelta(hours=20))
    with app.app_context():
        assert {s["days"] for s in jobs.remind_expiring_credentials()["sent"]} == {1}
        assert jobs.remind_expiring_credentials()["sent"] == []
    _set(app, store.id, credentials_expire_at=utcnow() - timedelta(hours=1))
    with app.app_context():
        assert jobs.remind_expiring_credentials()["sent"] == []
    assert len(_eml(app)) == 6


def test_a_renewal_starts_the_reminders_over(app, make):
    make.user(email="owner@example.jp", role="admin")
    store = _expiring_in(app, make, 5)
    with app.app_context():
        assert len(jobs.remind_expiring_credentials()["sent"]) == 1
        row = db.session.get(Store, store.id)
        credential_dates.note_renewal(row, now=utcnow() - timedelta(days=85))  # renewed, 5 days left again
        db.session.commit()
        assert [s["days"] for s in jobs.remind_expiring_credentials()["sent"]] == [7]


def test_reminders_go_by_smtp_and_one_that_could_not_be_sent_is_tried_again(app, make):
    make.user(email="owner@example.jp", role="admin")
    store = _expiring_in(app, make, 7)
    sink = MailSink().start()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port)
        sink.refuse("owner@example.jp", "451 4.3.0 try again later", times=1)
        with app.app_context():
            failed = jobs.remind_expiring_credentials()
        assert failed["sent"] == [] and failed["failed"][0]["to"] == "owner@example.jp"
        assert _row(app, store.id).credentials_reminded_days is None  # not marked: the next check sends it
        with app.app_context():
            sent = jobs.remind_expiring_credentials()
        assert [s["days"] for s in sent["sent"]] == [7]
        received = sink.to("owner@example.jp")
        assert len(received) == 1
        message = BytesParser(policy=policy.default).parsebytes(received[0].data)
        assert "有効期限" in str(message["Subject"]) and "RMS licenseKey" in message.get_content()
    finally:
        sink.stop()


def test_without_an_administrator_nothing_is_claimed(app, make):
    make.user(email="staff@example.jp", role="staff")
    store = _expiring_in(app, make, 3)
    with app.app_context():
        assert credential_reminders.send_due().sent == []
    assert _row(app, store.id).credentials_reminded_days is None


def test_the_daily_check_is_on_the_schedule(app):
    from rq.cron import CronScheduler

    from tatenpo.platform.redis_conn import redis

    with app.app_context():
        scheduler = CronScheduler(connection=redis())
        scheduler.load_config_from_file("tatenpo.schedule")
    jobs_by_name = {job.name: job for job in scheduler.get_jobs()}
    daily = jobs_by_name["remind_expiring_credentials"]
    assert daily.cron == "0 0 * * *" and daily.func is jobs.remind_expiring_credentials


# --- the push's ✗ --------------------------------------------------------------------------------------------------

@pytest.fixture
def quick(app):
    app.config.update(MALL_RETRIES=0, MALL_BACKOFF_SECONDS=0.1, MALL_TIMEOUT_SECONDS=5)
    return app


def _push_failure(app, shop) -> tuple[SyncRun, list[SyncAttempt]]:
    shop.set_stock(0, 7)
    with app.app_context():
        outcome = push_store(shop.store.id, "manual")
        run = db.session.get(SyncRun, outcome.run.id)
        attempts = db.session.scalars(select(SyncAttempt).where(SyncAttempt.run_id == run.id)).all()
        db.session.expunge_all()
    return run, attempts


def test_a_push_refused_after_the_recorded_expiry_says_the_key_expired_and_how_to_renew(app, quick, make, sandbox):
    shop = Shop(app, make, sandbox, "rakuten", items=1, name="楽天テスト店")
    past = utcnow() - timedelta(days=1)
    _set(app, shop.store.id, credentials_expire_at=past)
    shop.faults(auth="expired")  # RMS: 401 ES01-01, as for a wrong key
    run, attempts = _push_failure(app, shop)
    assert run.status == "failed"
    assert "RMS licenseKey" in run.message and "有効期限が切れました" in run.message
    assert "システム設定 › ECサイト › 楽天テスト店" in run.message and "WEB APIサービス" in run.message
    assert {a.error_code for a in attempts} == {credential_dates.EXPIRED_CODE}
    assert {a.hint for a in attempts} == {HINT_LOGIN}
    assert _row(app, shop.store.id).last_error == run.message


def test_without_a_recorded_expiry_a_refused_key_keeps_the_malls_own_reason(app, quick, make, sandbox):
    shop = Shop(app, make, sandbox, "rakuten", items=1)
    shop.faults(auth="expired")
    run, attempts = _push_failure(app, shop)
    assert "ES01-01" in run.message and "有効期限が切れました" not in run.message
    assert {a.error_code for a in attempts} == {"ES01-01"}


def test_a_refresh_token_the_mall_refuses_is_explained_as_expired_or_revoked(app, quick, make, sandbox):
    shop = Shop(app, make, sandbox, "yahoo", items=1, name="Yahoo店")
    shop.faults(auth="revoked")  # the token endpoint answers invalid_grant
    run, attempts = _push_failure(app, shop)
    assert "リフレッシュトークン" in run.message and "無効にされました" in run.message
    assert "システム設定 › ECサイト › Yahoo店" in run.message
    assert {a.error_code for a in attempts} == {credential_dates.EXPIRED_CODE}


def _connection_test(client, store_id) -> str:
    return client.post(f"/settings/stores/{store_id}/test", headers={"HX-Request": "true"}).get_data(as_text=True)


def test_a_connection_test_refused_after_the_recorded_expiry_says_the_key_expired_and_how_to_renew(
        app, quick, make, sandbox, client, auth):
    auth.login(role="admin")
    shop = Shop(app, make, sandbox, "rakuten", items=1, name="楽天テスト店")
    _set(app, shop.store.id, credentials_expire_at=utcnow() - timedelta(days=1))
    shop.faults(auth="expired")  # RMS: 401 ES01-01, as for a wrong key
    fragment = _connection_test(client, shop.store.id)
    assert "✗" in fragment and "RMS licenseKey" in fragment and "有効期限が切れました" in fragment
    assert "システム設定 › ECサイト › 楽天テスト店" in fragment and "WEB APIサービス" in fragment
    row = _row(app, shop.store.id)
    assert row.connection_ok is False and "有効期限が切れました" in row.connection_message


def test_a_connection_test_refused_before_the_expiry_or_without_one_keeps_the_malls_reason(
        app, quick, make, sandbox, client, auth):
    auth.login(role="admin")
    shop = Shop(app, make, sandbox, "rakuten", items=1)
    shop.faults(auth="wrong")
    for expiry in (None, utcnow() + timedelta(days=30)):
        _set(app, shop.store.id, credentials_expire_at=expiry)
        fragment = _connection_test(client, shop.store.id)
        assert "✗" in fragment and "ES01-01" in fragment and "有効期限が切れました" not in fragment
    shop.faults(auth=None)
    _set(app, shop.store.id, credentials_expire_at=utcnow() - timedelta(days=1))
    assert "✓ 接続OK" in _connection_test(client, shop.store.id)  # the mall still accepts it: no ✗ to explain


def test_other_failures_are_left_as_they_are(app):
    with app.app_context():
        store = Store(mall="rakuten", name="S", credentials_expire_at=utcnow() - timedelta(days=1))
        outage = MallError("503", transient=True, code="http-503")
        assert credential_dates.explain(store, outage) is outage
        item = MallError("no item", transient=False, hint="item", code="GE0014")
        assert credential_dates.explain(store, item) is item
        shopify = Store(mall="shopify", name="S", credentials_expire_at=utcnow() - timedelta(days=1))
        login = MallError("401", transient=False, hint=HINT_LOGIN, code="http-401")
        assert credential_dates.explain(shopify, login) is login


# --- the upgrade ---------------------------------------------------------------------------------------------------

def test_the_upgrade_leaves_existing_stores_with_unknown_dates(tmp_path, database_url):
    with _empty_database(database_url, tmp_path) as url:
        before = _flask("db", "upgrade", "512977705366", database_url=url, instance=tmp_path)
        assert before.returncode == 0, before.stderr
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(text(
                    "INSERT INTO stores (mall, name, auto_sync, immediate_sync, safety_stock, settings, "
                    "consecutive_failures, adopt_unexplained_decrease, created_at, updated_at) VALUES "
                    "('rakuten', '既存の店', true, false, 0, '{}', 0, false, :now, :now)"), {"now": utcnow()})
            upgraded = _flask("db", "upgrade", "c7e1a2b3d4f5", database_url=url, instance=tmp_path)
            assert upgraded.returncode == 0, upgraded.stderr
            with engine.connect() as connection:
                row = connection.execute(text(
                    "SELECT credentials_renewed_at, credentials_expire_at, credentials_reminded_days FROM stores"
                )).one()
            assert tuple(row) == (None, None, None)
            down = _flask("db", "downgrade", "512977705366", database_url=url, instance=tmp_path)
            assert down.returncode == 0, down.stderr
        finally:
            engine.dispose()
