"""システム設定 › ECサイト: adding and editing stores, write-only secrets, 接続テスト inline, sandbox stores."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tatenpo.models import Store
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db
from tatenpo.setup import endpoints


@pytest.fixture
def staff(auth, app, sandbox):
    app.config["SANDBOX_URL"] = sandbox.url
    auth.login()
    return auth


def stored(app, store_id):
    with app.app_context():
        store = db.session.get(Store, store_id)
        return store, credentials.read(store)


def only_store(app):
    with app.app_context():
        stores = db.session.query(Store).all()
        assert len(stores) == 1
        return stores[0].id


def test_the_list_says_there_is_no_store_yet_and_offers_to_add_one(client, staff):
    page = client.get("/settings/stores").get_data(as_text=True)
    assert "ECサイトはまだありません" in page
    assert "ECサイトを追加" in page


def test_choosing_a_mall_shows_its_credential_fields(client, staff):
    page = client.get("/settings/stores/new").get_data(as_text=True)
    assert "楽天市場 (FTP/CSV)" in page
    page = client.get("/settings/stores/new/rakuten-ftp").get_data(as_text=True)
    assert "在庫同期用ログインID" in page and "在庫同期用ログインパスワード" in page
    assert "自動在庫同期区分" in page and "保留在庫" in page


def test_unknown_mall_is_not_found(client, staff):
    assert client.get("/settings/stores/new/rakuma").status_code == 404


def test_adding_a_store_encrypts_the_secret_and_shows_it_only_as_set(client, staff, app):
    response = client.post("/settings/stores/new/yahoo", data={
        "name": "Yahoo本店", "auto_sync": "on", "safety_stock": "２", "cred_seller_id": "snbx-shop",
        "cred_access_token": "very-secret-token"})
    assert response.status_code == 302
    store, secrets = stored(app, only_store(app))
    assert store.auto_sync and store.safety_stock == 2
    assert secrets == {"seller_id": "snbx-shop", "access_token": "very-secret-token"}
    assert "very-secret-token" not in store.credentials_token
    listing = client.get("/settings/stores").get_data(as_text=True)
    assert "Yahoo本店" in listing and "設定済み" in listing and "使用中" in listing
    edit = client.get(f"/settings/stores/{store.id}").get_data(as_text=True)
    assert "very-secret-token" not in edit
    assert "snbx-shop" in edit  # not a secret: shown so the shop can check it
    assert "設定済みです。空欄のまま保存すると" in edit


def test_saving_with_an_empty_secret_field_keeps_the_stored_secret(client, staff, app, make):
    store = make.store(mall="rakuten", name="楽天店", auto_sync=True,
                       secrets={"service_secret": "SP_keep", "license_key": "SL_keep"})
    response = client.post(f"/settings/stores/{store.id}", data={
        "name": "楽天店（本店）", "auto_sync": "on", "safety_stock": "3", "cred_service_secret": "",
        "cred_license_key": "SL_new"})
    assert response.status_code == 302
    saved, secrets = stored(app, store.id)
    assert saved.name == "楽天店（本店）" and saved.safety_stock == 3
    assert secrets == {"service_secret": "SP_keep", "license_key": "SL_new"}


def test_a_store_can_have_its_own_sync_interval_within_limits(client, staff, app, make):
    store = make.store(mall="yahoo", name="Y店")
    response = client.post(f"/settings/stores/{store.id}", data={"name": "Y店", "auto_sync": "off",
                                                                "safety_stock": "0", "sync_interval": "5"})
    assert response.status_code == 400
    assert "10〜86400秒" in response.get_data(as_text=True)
    response = client.post(f"/settings/stores/{store.id}", data={"name": "Y店", "auto_sync": "off",
                                                                "safety_stock": "0", "sync_interval": "６０"})
    assert response.status_code == 302
    saved, _secrets = stored(app, store.id)
    assert saved.sync_interval_seconds == 60
    assert 'value="60"' in client.get(f"/settings/stores/{store.id}").get_data(as_text=True)


def test_bad_safety_stock_is_explained_and_nothing_is_saved(client, staff, app, make):
    store = make.store(mall="amazon", name="Amazon店", safety_stock=1)
    response = client.post(f"/settings/stores/{store.id}", data={
        "name": "別の名前", "auto_sync": "off", "safety_stock": "1.5"})
    assert response.status_code == 400
    assert "小数" in response.get_data(as_text=True) or "整数" in response.get_data(as_text=True)
    saved, _secrets = stored(app, store.id)
    assert saved.name == "Amazon店" and saved.safety_stock == 1


def test_turning_sync_on_without_credentials_names_each_missing_field(client, staff, app):
    response = client.post("/settings/stores/new/rakuten-ftp", data={
        "name": "楽天FTP店", "auto_sync": "on", "safety_stock": "0"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "自動在庫同期を使用中にするには「在庫同期用ログインID」を入力してください" in page
    assert "在庫同期用ログインパスワード」を入力してください" in page
    with app.app_context():
        assert db.session.query(Store).count() == 0


def test_a_refresh_token_alone_is_not_enough_but_the_whole_refresh_trio_is(client, staff, app):
    response = client.post("/settings/stores/new/amazon", data={
        "name": "A", "auto_sync": "on", "safety_stock": "0", "cred_seller_id": "A1", "cred_refresh_token": "Atzr|x"})
    assert response.status_code == 400
    assert "「SP-APIアクセストークン」を入力してください" in response.get_data(as_text=True)
    response = client.post("/settings/stores/new/amazon", data={
        "name": "A", "auto_sync": "on", "safety_stock": "0", "cred_seller_id": "A1", "cred_refresh_token": "Atzr|x",
        "cred_client_id": "amzn1.application-oa2-client.x", "cred_client_secret": "s"})
    assert response.status_code == 302


def test_a_stopped_store_can_be_saved_without_credentials(client, staff, app):
    response = client.post("/settings/stores/new/amazon", data={"name": "準備中の店", "auto_sync": "off",
                                                                "safety_stock": "0"})
    assert response.status_code == 302
    store, secrets = stored(app, only_store(app))
    assert not store.auto_sync and secrets == {}


def test_an_endpoint_that_is_not_a_web_address_is_refused(client, staff, app):
    response = client.post("/settings/stores/new/yahoo", data={
        "name": "Y", "auto_sync": "off", "safety_stock": "0", "endpoint": "circus.example.jp"})
    assert response.status_code == 400
    assert "のようなアドレスを入力するか" in response.get_data(as_text=True)
    response = client.post("/settings/stores/new/rakuten-ftp", data={
        "name": "F", "auto_sync": "off", "safety_stock": "0", "endpoint": "https://upload.example.jp"})
    assert "sftp://upload.rakuten.ne.jp:22" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Store).count() == 0


def test_an_empty_store_name_is_refused(client, staff, app):
    response = client.post("/settings/stores/new/yahoo", data={"name": "  ", "auto_sync": "off", "safety_stock": "0"})
    assert response.status_code == 400
    assert "店舗名" in response.get_data(as_text=True)


def test_the_form_lists_sandbox_stores_with_the_credentials_to_use(client, staff, sandbox):
    sandbox_store = sandbox.create_store("amazon", items=2)
    page = client.get("/settings/stores/new/amazon").get_data(as_text=True)
    assert sandbox_store["credentials"]["seller_id"] in page
    assert sandbox_store["credentials"]["access_token"] in page
    assert sandbox_store["endpoint"] in page


def test_choosing_a_sandbox_store_fills_endpoint_and_credentials_and_the_connection_test_passes(client, staff, app, sandbox):
    sandbox_store = sandbox.create_store("rakuten", items=2)
    response = client.post("/settings/stores/new/rakuten", data={
        "name": "お試し楽天", "auto_sync": "on", "safety_stock": "0", "sandbox_store": str(sandbox_store["id"])})
    assert response.status_code == 302
    store_id = only_store(app)
    store, secrets = stored(app, store_id)
    assert store.endpoint == sandbox_store["endpoint"] and secrets == sandbox_store["credentials"]
    result = client.post(f"/settings/stores/{store_id}/test", headers={"HX-Request": "true"})
    fragment = result.get_data(as_text=True)
    assert "✓ 接続OK" in fragment and "<html" not in fragment
    store, _secrets = stored(app, store_id)
    assert store.connection_ok is True and store.connection_checked_at is not None


def test_a_new_sandbox_store_can_be_created_from_the_form(client, staff, app, sandbox):
    response = client.post("/settings/stores/new/shopify", data={
        "name": "お試しShopify", "auto_sync": "on", "safety_stock": "0", "sandbox_store": "new"})
    assert response.status_code == 302
    store, secrets = stored(app, only_store(app))
    # The sandbox store's whole app: its token, and its client ID and secret (the 認可 button's, sandbox/oauth.py).
    assert store.endpoint.startswith(sandbox.url + "/shopify/") and set(secrets) == {"shop", "access_token", "client_id",
                                                                                       "client_secret"}
    check = client.post(f"/settings/stores/{store.id}/test", headers={"HX-Request": "true"})
    assert "✓ 接続OK" in check.get_data(as_text=True)


def test_a_failed_connection_test_shows_the_reason_and_the_login_check(client, staff, app, sandbox, make):
    sandbox_store = sandbox.create_store("yahoo", items=1)
    store = make.store(mall="yahoo", endpoint=sandbox_store["endpoint"],
                       secrets={"seller_id": sandbox_store["credentials"]["seller_id"], "access_token": "wrong"})
    fragment = client.post(f"/settings/stores/{store.id}/test", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "✗ 接続できません" in fragment
    assert "Yahoo!がアクセストークンを拒否しました" in fragment
    assert "ECサイト設定のログインIDやパスワード" in fragment
    saved, _secrets = stored(app, store.id)
    assert saved.connection_ok is False and "アクセストークン" in saved.connection_message


def test_the_connection_test_works_without_htmx_too(client, staff, app, sandbox, make):
    sandbox_store = sandbox.create_store("amazon", items=1)
    store = make.store(mall="amazon", endpoint=sandbox_store["endpoint"], secrets=sandbox_store["credentials"])
    response = client.post(f"/settings/stores/{store.id}/test", follow_redirects=True)
    assert "Amazon.co.jpに接続できました" in response.get_data(as_text=True)


def test_new_credentials_clear_the_old_connection_result(client, staff, app, make):
    store = make.store(mall="yahoo", secrets={"seller_id": "a", "access_token": "b"}, connection_ok=True,
                       connection_message="接続OK")
    client.post(f"/settings/stores/{store.id}", data={"name": store.name, "auto_sync": "on", "safety_stock": "0",
                                                      "cred_seller_id": "a", "cred_access_token": "c"})
    saved, _secrets = stored(app, store.id)
    assert saved.connection_ok is None


def test_saving_unchanged_credentials_keeps_the_connection_result(client, staff, app, make):
    store = make.store(mall="yahoo", secrets={"seller_id": "a", "access_token": "b"}, connection_ok=True,
                       connection_message="接続OK")
    client.post(f"/settings/stores/{store.id}", data={"name": "新しい名前", "auto_sync": "on", "safety_stock": "1",
                                                      "cred_seller_id": "a", "cred_access_token": ""})
    saved, _secrets = stored(app, store.id)
    assert saved.name == "新しい名前" and saved.connection_ok is True


def test_when_the_sandbox_is_down_the_form_says_so_and_still_saves(client, auth, app):
    app.config["SANDBOX_URL"] = "http://127.0.0.1:9"
    auth.login()
    page = client.get("/settings/stores/new/yahoo").get_data(as_text=True)
    assert "サンドボックスモール（http://127.0.0.1:9）に接続できません" in page
    response = client.post("/settings/stores/new/yahoo", data={"name": "Y店", "auto_sync": "off", "safety_stock": "0"})
    assert response.status_code == 302


def test_choosing_a_sandbox_store_of_another_mall_is_refused(client, staff, app, sandbox):
    other = sandbox.create_store("amazon", items=1)
    response = client.post("/settings/stores/new/yahoo", data={
        "name": "Y", "auto_sync": "off", "safety_stock": "0", "sandbox_store": str(other["id"])})
    assert response.status_code == 400
    assert "このモールのものではありません" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Store).count() == 0


def test_the_settings_pages_require_login(client, make):
    make.user()
    for path in ("/settings/stores", "/settings/stores/new", "/settings/stores/new/yahoo"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.post("/settings/stores/1/test")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    # The connection test is an htmx button: htmx gets 401 and the login page to go to, never the page itself.
    response = client.post("/settings/stores/1/test", headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"] == "/login"


def test_a_mall_that_does_not_answer_fails_the_connection_test_quickly_with_the_reason(client, staff, app, sandbox, make):
    app.config["MALL_TIMEOUT_SECONDS"] = 1
    sandbox_store = sandbox.create_store("rakuten", items=1)
    sandbox.faults(sandbox_store["id"], timeout=True, hang_seconds=3)
    store = make.store(mall="rakuten", endpoint=sandbox_store["endpoint"], secrets=sandbox_store["credentials"])
    fragment = client.post(f"/settings/stores/{store.id}/test", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "✗ 接続できません" in fragment and "1秒以内に応答がありませんでした" in fragment
    sandbox.faults(sandbox_store["id"], timeout=None)


def test_credentials_that_cannot_be_decrypted_any_more_are_asked_for_again(client, staff, app, make):
    store = make.store(mall="yahoo", name="鍵が変わった店")
    with app.app_context():
        db.session.get(Store, store.id).credentials_token = "gAAAA-not-a-token-of-this-key"
        db.session.commit()
    assert "復号できません" in client.get(f"/settings/stores/{store.id}").get_data(as_text=True)
    assert client.get("/settings/stores").status_code == 200
    response = client.post(f"/settings/stores/{store.id}", data={
        "name": store.name, "auto_sync": "on", "safety_stock": "0", "cred_seller_id": "s1", "cred_access_token": "t1"})
    assert response.status_code == 302
    _saved, secrets = stored(app, store.id)
    assert secrets == {"seller_id": "s1", "access_token": "t1"}


def test_choosing_a_sandbox_store_that_no_longer_exists_is_refused_plainly(client, staff, app):
    response = client.post("/settings/stores/new/yahoo", data={
        "name": "Y", "auto_sync": "off", "safety_stock": "0", "sandbox_store": "99999"})
    assert response.status_code == 400
    assert "そのサンドボックス店舗はありません" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Store).count() == 0


def test_the_first_sftp_connection_test_trusts_the_servers_host_key_and_pushes_refuse_any_other(
        client, staff, app, sandbox, make):
    from tatenpo.setup import stores
    from tatenpo.sync.push import push_store

    remote = sandbox.create_store("rakuten-ftp", items=1)
    store = make.store(mall="rakuten-ftp", endpoint=remote["sftp_endpoint"], secrets=remote["credentials"])
    make.application(malls=("rakuten",))
    fragment = client.post(f"/settings/stores/{store.id}/test", headers={"HX-Request": "true"}).get_data(as_text=True)
    saved, _secrets = stored(app, store.id)
    key = saved.settings["sftp_host_key"]
    assert saved.connection_ok is True and key.startswith("ssh-rsa SHA256:") and key in fragment
    # The server now presents another key (as a server listening in would): the push sends nothing.
    with app.app_context():
        stores.trust_host_key(db.session.get(Store, store.id), "ssh-rsa SHA256:" + "B" * 43)
        db.session.commit()
    listing = make.listing(store, make.product(on_hand=3), item_code=sandbox.items(remote["id"])[0]["code"],
                           variant_code=sandbox.items(remote["id"])[0]["variant"])
    with app.app_context():
        from tatenpo.stock import inventory

        inventory.set_stock(listing.product_id, 7)
        db.session.commit()
        run = push_store(store.id, "manual").run
        said = " ".join([run.message or ""] + [a.message or "" for a in run.attempts])
        assert run.status == "failed" and "ホスト鍵" in said, said
    assert sandbox.stock(remote["id"])[(listing.item_code, listing.variant_code)] != 7
    # The shop forgets the kept key (Rakuten announced a new one); the next test trusts what the server shows.
    forgotten = client.post(f"/settings/stores/{store.id}/host-key/forget", headers={"HX-Request": "true"})
    assert "sftp_host_key" not in stored(app, store.id)[0].settings and "✓" not in forgotten.get_data(as_text=True)
    client.post(f"/settings/stores/{store.id}/test", headers={"HX-Request": "true"})
    assert stored(app, store.id)[0].settings["sftp_host_key"] == key


def test_another_endpoint_forgets_the_trusted_host_key(app, make):
    from tatenpo.setup import stores

    store = make.store(mall="rakuten-ftp", endpoint="sftp://127.0.0.1:2222", settings={"sftp_host_key": "ssh-rsa SHA256:x"})
    with app.app_context():
        row = db.session.get(Store, store.id)
        stores.update_store(row, name="名前だけ変更")
        assert stores.trusted_host_key(row) == "ssh-rsa SHA256:x"
        stores.update_store(row, endpoint="sftp://upload.rakuten.ne.jp:22")
        assert stores.trusted_host_key(row) is None
        db.session.rollback()


def test_an_endpoint_outside_the_malls_and_the_allowed_hosts_is_refused_and_nothing_is_saved(client, staff, app):
    response = client.post("/settings/stores/new/yahoo", data={
        "name": "Y", "auto_sync": "off", "safety_stock": "0", "endpoint": "https://attacker.example/collect"})
    assert response.status_code == 400
    assert "attacker.example" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Store).count() == 0


def test_changing_only_the_endpoint_discards_the_stored_secrets_so_they_never_reach_the_new_host(
        client, staff, app, make, sandbox):
    """Seen: a user changed only a store's endpoint and pressed 接続テスト, and the stored RMS keys went there."""
    app.config["ALLOWED_MALL_HOSTS"] = "127.0.0.1,localhost"
    remote = sandbox.create_store("rakuten", items=1)
    store = make.store(mall="rakuten", name="楽天店", endpoint=remote["endpoint"], secrets=remote["credentials"])
    elsewhere = remote["endpoint"].replace("127.0.0.1", "localhost")
    response = client.post(f"/settings/stores/{store.id}", data={
        "name": "楽天店", "auto_sync": "off", "safety_stock": "0", "endpoint": elsewhere,
        "cred_service_secret": "", "cred_license_key": ""})
    assert response.status_code == 302
    saved, secrets = stored(app, store.id)
    assert saved.endpoint == elsewhere and secrets == {}
    result = client.post(f"/settings/stores/{store.id}/test", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "接続OK" not in result


def test_secrets_entered_again_in_the_same_save_go_with_the_new_endpoint(client, staff, app, make, sandbox):
    remote = sandbox.create_store("rakuten", items=1)
    store = make.store(mall="rakuten", name="楽天店", endpoint=remote["endpoint"], secrets=remote["credentials"])
    app.config["ALLOWED_MALL_HOSTS"] = "127.0.0.1,localhost"
    other = sandbox.create_store("rakuten", items=1)
    response = client.post(f"/settings/stores/{store.id}", data={
        "name": "楽天店", "auto_sync": "off", "safety_stock": "0",
        "endpoint": other["endpoint"].replace("127.0.0.1", "localhost"),
        "cred_service_secret": other["credentials"]["service_secret"],
        "cred_license_key": other["credentials"]["license_key"]})
    assert response.status_code == 302
    assert stored(app, store.id)[1] == other["credentials"]


@pytest.mark.parametrize("mall, endpoint, allowed", [
    ("rakuten", "https://api.rms.rakuten.co.jp", True),
    ("rakuten", "https://api.rms.rakuten.co.jp.attacker.example", False),
    ("shopify", "https://my-shop.myshopify.com", True),
    ("shopify", "https://myshopify.com.attacker.example", False),
    ("yahoo", "https://user:pw@circus.shopping.yahooapis.jp", False),
    ("rakuten-ftp", "sftp://upload.rakuten.ne.jp:22", True),
    ("rakuten-ftp", "ftp://upload.rakuten.ne.jp:21", False),
    ("amazon", "http://169.254.169.254/latest/meta-data", False),
    ("yahoo", "http://127.0.0.1:5001/yahoo", True),  # ALLOWED_MALL_HOSTS (the tests' sandbox)
])
def test_endpoints_are_the_malls_own_hosts_or_allowed_by_the_operator(app, mall, endpoint, allowed):
    with app.app_context():
        if allowed:
            assert endpoints.check(mall, endpoint) == endpoint
        else:
            with pytest.raises(endpoints.EndpointRefused):
                endpoints.check(mall, endpoint)


def test_plain_ftp_to_the_real_mall_needs_the_operators_consent(app):
    app.config["ALLOW_PLAIN_FTP"] = True
    with app.app_context():
        assert endpoints.check("rakuten-ftp", "ftp://upload.rakuten.ne.jp:21")


# --- 資格情報の有効期限 (issue 13) ---------------------------------------------------------------------------------

def _dates(app, store_id):
    with app.app_context():
        store = db.session.get(Store, store_id)
        return store.credentials_renewed_at, store.credentials_expire_at, store.credentials_reminded_days


def test_a_store_from_before_the_dates_shows_its_expiry_as_not_registered(client, staff, app, make):
    store = make.store(mall="rakuten", name="既存の楽天店", secrets={"service_secret": "s", "license_key": "k"})
    assert "有効期限: 未登録" in client.get("/settings/stores").get_data(as_text=True)
    edit = client.get(f"/settings/stores/{store.id}").get_data(as_text=True)
    assert "有効期限: 未登録" in edit and 'id="credentials_expire_on"' in edit
    assert _dates(app, store.id) == (None, None, None)  # nothing invented


def test_a_new_licence_key_records_its_renewal_and_the_90_day_expiry(client, staff, app, make):
    from datetime import timedelta

    from tatenpo.models import utcnow

    store = make.store(mall="rakuten", name="楽天店", secrets={"service_secret": "s", "license_key": "old"})
    before = utcnow()
    response = client.post(f"/settings/stores/{store.id}", data={
        "name": "楽天店", "auto_sync": "on", "safety_stock": "0", "cred_license_key": "new-key",
        "credentials_expire_on": ""})
    assert response.status_code == 302
    renewed, expires, reminded = _dates(app, store.id)
    assert before <= renewed <= utcnow() and expires == renewed + timedelta(days=90) and reminded is None


def test_the_expiry_date_the_mall_shows_is_taken_with_the_new_key(client, staff, app, make):
    from datetime import date, timedelta

    from tatenpo.setup import credential_dates

    store = make.store(mall="rakuten", name="楽天店", secrets={"service_secret": "s", "license_key": "old"})
    day = credential_dates.today() + timedelta(days=60)
    client.post(f"/settings/stores/{store.id}", data={
        "name": "楽天店", "auto_sync": "on", "safety_stock": "0", "cred_license_key": "new-key",
        "credentials_expire_on": day.isoformat()})
    renewed, expires, _reminded = _dates(app, store.id)
    assert renewed is not None and expires == credential_dates.end_of_day(day)
    with app.app_context():
        assert credential_dates.expiry_day(db.session.get(Store, store.id)) == day
    assert isinstance(day, date)


def test_correcting_only_the_date_keeps_the_renewal_and_restarts_the_reminders(client, staff, app, make):
    from datetime import timedelta

    from tatenpo.models import utcnow
    from tatenpo.setup import credential_dates

    renewed_at = utcnow() - timedelta(days=80)
    store = make.store(mall="rakuten", name="楽天店", secrets={"service_secret": "s", "license_key": "k"},
                       credentials_renewed_at=renewed_at, credentials_expire_at=renewed_at + timedelta(days=90),
                       credentials_reminded_days=14)
    edit = client.get(f"/settings/stores/{store.id}").get_data(as_text=True)
    with app.app_context():
        shown = credential_dates.expiry_day(db.session.get(Store, store.id))
    assert f'value="{shown.isoformat()}"' in edit  # the form starts with the stored date
    # Saving something else with the date as it was changes no date.
    client.post(f"/settings/stores/{store.id}", data={
        "name": "楽天店（本店）", "auto_sync": "on", "safety_stock": "0", "credentials_expire_on": shown.isoformat()})
    assert _dates(app, store.id) == (renewed_at, renewed_at + timedelta(days=90), 14)
    corrected = shown + timedelta(days=20)
    client.post(f"/settings/stores/{store.id}", data={
        "name": "楽天店（本店）", "auto_sync": "on", "safety_stock": "0", "credentials_expire_on": corrected.isoformat()})
    assert _dates(app, store.id) == (renewed_at, credential_dates.end_of_day(corrected), None)


@pytest.mark.parametrize("typed, message", [
    ("来月", "YYYY-MM-DD の形式で入力してください"),
    ("2020-01-01", "過去の日付です"),
    ("2099-01-01", "3年以内の日付を入力してください"),
])
def test_a_bad_expiry_date_is_explained_and_nothing_is_saved(client, staff, app, make, typed, message):
    store = make.store(mall="rakuten", name="楽天店", secrets={"service_secret": "s", "license_key": "old"})
    response = client.post(f"/settings/stores/{store.id}", data={
        "name": "名前を変えた", "auto_sync": "on", "safety_stock": "0", "cred_license_key": "new-key",
        "credentials_expire_on": typed})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    saved, secrets = stored(app, store.id)
    assert saved.name == "楽天店" and secrets["license_key"] == "old"
    assert _dates(app, store.id) == (None, None, None)


def test_the_new_store_form_starts_with_the_rules_date_and_saving_records_it(client, staff, app):
    from datetime import timedelta

    from tatenpo.setup import credential_dates

    page = client.get("/settings/stores/new/yahoo").get_data(as_text=True)
    rule_day = credential_dates.today() + timedelta(days=28)
    assert f'value="{rule_day.isoformat()}"' in page and "有効期間は28日です" in page
    assert 'id="credentials_expire_on"' not in client.get("/settings/stores/new/shopify").get_data(as_text=True)
    client.post("/settings/stores/new/yahoo", data={
        "name": "Yahoo店", "auto_sync": "off", "safety_stock": "0", "cred_seller_id": "snbx-1",
        "cred_client_id": "c", "cred_client_secret": "s", "cred_refresh_token": "r",
        "credentials_expire_on": rule_day.isoformat()})
    renewed, expires, _ = _dates(app, only_store(app))
    assert renewed is not None and credential_dates.expiry_day(Store(credentials_expire_at=expires)) == rule_day


def test_a_store_without_the_expiring_credential_gets_no_date(client, staff, app):
    # An access token alone (no refresh token): nothing the 4-week rule applies to, even with the form's date.
    from datetime import timedelta

    from tatenpo.setup import credential_dates

    client.post("/settings/stores/new/yahoo", data={
        "name": "Yahoo店", "auto_sync": "off", "safety_stock": "0", "cred_seller_id": "snbx-1",
        "cred_access_token": "t", "credentials_expire_on": (credential_dates.today() + timedelta(days=28)).isoformat()})
    assert _dates(app, only_store(app)) == (None, None, None)


def test_a_shopify_token_is_recorded_as_renewed_and_never_expires(client, staff, app):
    client.post("/settings/stores/new/shopify", data={
        "name": "Shopify店", "auto_sync": "off", "safety_stock": "0", "cred_shop": "my-shop",
        "cred_access_token": "shpat_x"})
    renewed, expires, _ = _dates(app, only_store(app))
    assert renewed is not None and expires is None
    assert "期限なし" in client.get("/settings/stores").get_data(as_text=True)
