"""認可ボタン against the sandbox malls over real HTTP: a store with only its app's credentials is authorized on
the mall's consent page (Yahoo! ID連携, Seller Central, Shopify), the tokens are stored encrypted and the next
push uses them; a refusal, a wrong or missing state, a replayed code or answer, another user's answer and a
Shopify answer with a bad hmac are refused with a message in Japanese and change nothing."""
from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tatenpo.malls import family_of
from tatenpo.models import Listing, Product, Store
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db
from tatenpo.stock import inventory
from tatenpo.sync.push import push_store

# The app credentials a shop enters before authorizing (no token of any kind).
APP_KEYS = {"yahoo": ("seller_id", "client_id", "client_secret"),
            "amazon": ("application_id", "client_id", "client_secret"),
            "shopify": ("shop", "client_id", "client_secret")}
TOKENS = {"yahoo": ("access_token", "refresh_token"), "amazon": ("access_token", "refresh_token", "seller_id"),
          "shopify": ("access_token",)}


class Authorizing:
    """A sandbox store, its app's callback URL registered, and its Tatenpo twin holding only the app's credentials,
    its listings linked item by item."""

    def __init__(self, app, make, sandbox, mall: str, register: bool = True) -> None:
        self.app, self.sandbox, self.mall = app, sandbox, mall
        self.remote = sandbox.create_store(mall, items=2)
        self.callback = f"http://localhost/authorize/{mall}/callback"  # the test client's url_for(_external=True)
        if register:
            sandbox._call("POST", f"/_sandbox/stores/{self.remote['id']}/redirect_uris", json={"redirect_uri": self.callback})
        app_credentials = {key: self.remote["credentials"][key] for key in APP_KEYS[mall]}
        self.store = make.store(mall=mall, endpoint=self.remote["endpoint"], secrets=app_credentials)
        make.application(malls=(family_of(mall),))
        self.items = sandbox.items(self.remote["id"])
        with app.app_context():
            self.products = [Product(code=f"A{self.store.id}-{n}", name=item["name"], on_hand=1)
                             for n, item in enumerate(self.items)]
            db.session.add_all(self.products)
            db.session.flush()
            db.session.add_all([Listing(store_id=self.store.id, product_id=product.id, item_code=item["code"],
                                        variant_code=item["variant"], code=item["sku"], title=item["name"], attributes={})
                                for product, item in zip(self.products, self.items)])
            db.session.commit()
            self.product_ids = [p.id for p in self.products]

    def start(self, client) -> str:
        """The 認可 button on the store's settings page: Tatenpo's answer is a redirect to the mall's consent page."""
        page = client.get(f"/settings/stores/{self.store.id}").get_data(as_text=True)
        link = re.search(r'class="button primary authorize-button" href="([^"]+)"', page)
        assert link, page
        response = client.get(html.unescape(link.group(1)))
        assert response.status_code == 303, response.data
        return response.headers["Location"]

    def consent(self, consent_url: str, decision: str) -> str:
        """The shop on the mall's consent page: it shows 許可する and 拒否する; the chosen one sends the browser back."""
        page = requests.get(consent_url, timeout=30)
        assert page.status_code == 200 and "許可する" in page.text and "拒否する" in page.text, page.text
        url = urlsplit(consent_url)
        answer = requests.post(f"{url.scheme}://{url.netloc}{url.path}", data={**dict(parse_qsl(url.query)),
                               "decision": decision}, allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.text
        assert answer.headers["Location"].startswith(self.callback)
        return answer.headers["Location"]

    def authorize(self, client) -> str:
        return self.consent(self.start(client), "allow")

    def stored(self) -> dict:
        with self.app.app_context():
            return credentials.read(db.session.get(Store, self.store.id))

    def store_row(self) -> Store:
        with self.app.app_context():
            row = db.session.get(Store, self.store.id)
            db.session.expunge(row)
            return row

    def push(self, quantity: int):
        with self.app.app_context():
            inventory.set_stock(self.product_ids[0], quantity)
            db.session.commit()
            return push_store(self.store.id, "manual").run.status

    def mall_quantity(self) -> int:
        item = self.items[0]
        return self.sandbox.stock(self.remote["id"])[(item["code"], item["variant"])]


def _csrf(client, store_id: int) -> str:
    page = client.get(f"/settings/stores/{store_id}").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _follow(client, url: str):
    """Tatenpo's callback, then the page it sends the shop to (with the flashed message)."""
    response = client.get(url)
    assert response.status_code == 302
    return response.headers["Location"], client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("mall", ["yahoo", "amazon", "shopify"])
def test_allowing_stores_the_tokens_encrypted_and_the_next_push_uses_them(app, make, sandbox, client, auth, mall):
    shop = Authorizing(app, make, sandbox, mall)
    auth.login(role="admin")
    page = client.get(f"/settings/stores/{shop.store.id}").get_data(as_text=True)
    assert "モールで認可" in page and shop.callback in page  # the button, and the URL to register with the mall
    assert shop.push(5) == "failed"  # without a token nothing reaches the mall
    before = shop.store_row().credentials_token

    location, page = _follow(client, shop.authorize(client))

    assert location.endswith(f"/settings/stores/{shop.store.id}#authorize")
    assert "認可が完了しました" in page
    saved = shop.stored()
    assert all(saved.get(key) for key in TOKENS[mall])
    assert saved["client_secret"] == shop.remote["credentials"]["client_secret"]  # the app's own stay
    row = shop.store_row()
    assert row.credentials_token != before
    assert not any(saved[key] in row.credentials_token for key in TOKENS[mall])  # encrypted at rest
    assert row.credentials_renewed_at is not None  # credential_dates.note_renewal
    if mall == "amazon":
        assert saved["seller_id"] == shop.remote["credentials"]["seller_id"]  # selling_partner_id of the answer

    assert shop.push(7) == "success"
    assert shop.mall_quantity() == 7


def test_yahoo_tokens_from_the_authorization_renew_with_the_refresh_token(app, make, sandbox, client, auth):
    shop = Authorizing(app, make, sandbox, "yahoo")
    auth.login(role="admin")
    _follow(client, shop.authorize(client))
    saved = shop.stored()
    # The access token the authorization gave is dropped: the refresh token it gave gets a new one at the mall.
    with app.app_context():
        store = db.session.get(Store, shop.store.id)
        credentials.write(store, {"access_token": ""}, keep_blank=False)
        db.session.commit()
    assert "access_token" not in shop.stored()
    assert saved["refresh_token"] != shop.remote["credentials"]["refresh_token"]  # a token of this authorization
    assert shop.push(3) == "success"
    assert shop.mall_quantity() == 3


@pytest.mark.parametrize("mall", ["yahoo", "amazon", "shopify"])
def test_refusing_on_the_consent_page_says_so_and_changes_nothing(app, make, sandbox, client, auth, mall):
    shop = Authorizing(app, make, sandbox, mall)
    auth.login(role="admin")
    before = shop.store_row().credentials_token

    location, page = _follow(client, shop.consent(shop.start(client), "deny"))

    assert location.endswith(f"/settings/stores/{shop.store.id}#authorize")
    assert "認可が拒否されました" in page and "何も変更していません" in page
    row = shop.store_row()
    assert row.credentials_token == before and row.credentials_renewed_at is None


def _with(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **changes}
    query = {key: value for key, value in query.items() if value is not None}
    return parts._replace(query="&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in query.items())).geturl()


@pytest.mark.parametrize("state", ["forged-state", None])
def test_an_answer_with_a_wrong_or_missing_state_is_refused(app, make, sandbox, client, auth, state):
    shop = Authorizing(app, make, sandbox, "yahoo")
    auth.login(role="admin")
    before = shop.store_row().credentials_token
    answer = shop.authorize(client)

    location, page = _follow(client, _with(answer, state=state))

    assert "ここで開始した認可のものではない" in page
    assert shop.store_row().credentials_token == before
    assert set(shop.stored()) == set(APP_KEYS["yahoo"])


def test_a_replayed_answer_or_code_is_refused_and_the_first_tokens_stay(app, make, sandbox, client, auth):
    shop = Authorizing(app, make, sandbox, "yahoo")
    auth.login(role="admin")
    answer = shop.authorize(client)
    _follow(client, answer)
    first = shop.stored()
    assert first.get("refresh_token")

    # The same answer again: its state was used up.
    _, page = _follow(client, answer)
    assert "すでに使われています" in page
    # The old code with a state of a new authorization: the mall refuses the used code.
    fresh_state = dict(parse_qsl(urlsplit(shop.start(client)).query))["state"]
    _, page = _follow(client, _with(answer, state=fresh_state))
    assert "認可コードをトークンに交換できませんでした" in page and "何も変更していません" in page
    assert shop.stored() == first


def test_another_users_session_cannot_use_the_answer(app, make, sandbox, client, auth):
    shop = Authorizing(app, make, sandbox, "yahoo")
    auth.login(role="admin")
    answer = shop.authorize(client)
    other = app.test_client()
    make.user(email="other-admin@example.jp", role="admin")
    other.post("/login", data={"email": "other-admin@example.jp", "password": "correct horse battery"})

    _, page = _follow(other, answer)

    assert "ここで開始した認可のものではない" in page
    assert set(shop.stored()) == set(APP_KEYS["yahoo"])


@pytest.mark.parametrize("tamper", [{"hmac": "0" * 64}, {"shop": "another-shop.myshopify.com"}, {"hmac": None}])
def test_a_shopify_answer_failing_its_hmac_or_shop_check_is_refused(app, make, sandbox, client, auth, tamper):
    shop = Authorizing(app, make, sandbox, "shopify")
    auth.login(role="admin")
    before = shop.store_row().credentials_token

    _, page = _follow(client, _with(shop.authorize(client), **tamper))

    assert "署名（hmac）が一致しません" in page and "何も変更していません" in page
    assert shop.store_row().credentials_token == before


def test_the_button_needs_the_apps_credentials_first(app, make, sandbox, client, auth):
    remote = sandbox.create_store("yahoo", items=1)
    store = make.store(mall="yahoo", endpoint=remote["endpoint"], secrets={"seller_id": remote["credentials"]["seller_id"]})
    auth.login(role="admin")

    page = client.get(f"/settings/stores/{store.id}").get_data(as_text=True)
    assert "先に上のフォームで次の項目を保存してください" in page and "authorize-button" not in page

    _, page = _follow(client, f"/settings/stores/{store.id}/authorize?csrf_token={_csrf(client, store.id)}")
    assert "認可に必要です" in page


@pytest.mark.parametrize("token", ["", "forged"])
def test_a_start_without_the_sessions_csrf_token_goes_nowhere(app, make, sandbox, client, auth, token):
    shop = Authorizing(app, make, sandbox, "yahoo")
    auth.login(role="admin")
    location, page = _follow(client, f"/settings/stores/{shop.store.id}/authorize?csrf_token={token}")
    assert urlsplit(location).path == f"/settings/stores/{shop.store.id}"  # not the mall
    assert "有効期限が切れています" in page
    with client.session_transaction() as session:
        assert not session.get("tatenpo_authorizations")


def test_malls_without_an_authorization_flow_show_no_button(app, make, client, auth):
    store = make.store(mall="rakuten")
    auth.login(role="admin")
    page = client.get(f"/settings/stores/{store.id}").get_data(as_text=True)
    assert "モールで認可" not in page
    _, page = _follow(client, f"/settings/stores/{store.id}/authorize?csrf_token={_csrf(client, store.id)}")
    assert "認可ボタンがありません" in page


def test_staff_cannot_authorize_a_store(app, make, sandbox, client, auth):
    shop = Authorizing(app, make, sandbox, "yahoo")
    auth.login(email="staff-only@example.jp", role="staff")
    assert client.get(f"/settings/stores/{shop.store.id}/authorize").status_code == 403


def test_the_mall_refuses_a_callback_url_not_registered_for_the_app(app, make, sandbox, client, auth):
    shop = Authorizing(app, make, sandbox, "yahoo", register=False)
    auth.login(role="admin")
    page = requests.get(shop.start(client), timeout=30, allow_redirects=False)
    assert page.status_code == 400 and "コールバックURL" in page.text  # the mall's own page; never redirected
    assert f"/stores/{shop.remote['id']}/app" in page.text  # where to register it


def test_the_sandbox_app_page_registers_a_callback_url(sandbox):
    remote = sandbox.create_store("amazon", items=1)
    page = requests.post(f"{sandbox.url}/stores/{remote['id']}/app",
                         data={"redirect_uri": "https://tatenpo.example/authorize/amazon/callback"}, timeout=30)
    assert page.status_code == 200 and "登録しました" in page.text
    bad = requests.post(f"{sandbox.url}/stores/{remote['id']}/app", data={"redirect_uri": "javascript:alert(1)"},
                        timeout=30)
    assert "http:// または https://" in bad.text
    listed = sandbox._call("GET", f"/_sandbox/stores/{remote['id']}/redirect_uris").json()["redirect_uris"]
    assert listed == ["https://tatenpo.example/authorize/amazon/callback"]


def test_a_code_is_refused_by_the_mall_once_used_or_with_another_redirect_uri(sandbox):
    remote = sandbox.create_store("amazon", items=1)
    creds = remote["credentials"]
    sandbox._call("POST", f"/_sandbox/stores/{remote['id']}/redirect_uris", json={"redirect_uri": "http://t.example/cb"})
    consent = f"{remote['endpoint']}/apps/authorize/consent"
    answer = requests.post(consent, data={"application_id": creds["application_id"], "state": "s", "version": "beta",
                                          "decision": "allow"}, allow_redirects=False, timeout=30)
    query = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert query["state"] == "s" and query["selling_partner_id"] == creds["seller_id"]
    token_url = f"{remote['endpoint']}/auth/o2/token"
    exchange = {"grant_type": "authorization_code", "code": query["spapi_oauth_code"], "client_id": creds["client_id"],
                "client_secret": creds["client_secret"]}
    wrong_uri = requests.post(token_url, data={**exchange, "redirect_uri": "http://evil.example/cb"}, timeout=30)
    assert wrong_uri.status_code == 400 and wrong_uri.json()["error"] == "invalid_grant"
    # The wrong try used the code up (single use, RFC 6749 4.1.2).
    again = requests.post(token_url, data={**exchange, "redirect_uri": "http://t.example/cb"}, timeout=30)
    assert again.json()["error"] == "invalid_grant"
    bad_client = requests.post(token_url, data={**exchange, "client_secret": "nope", "redirect_uri": "http://t.example/cb"},
                               timeout=30)
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"



def test_a_code_past_its_lifetime_is_refused_by_the_mall(tmp_path):
    """The sandbox in this process (its own state file), so the code's expiry can be moved into the past."""
    from sandbox import create_app as create_sandbox

    mall = create_sandbox(str(tmp_path / "sandbox.db"), "http://sandbox.test")
    client = mall.test_client()
    remote = client.post("/_sandbox/stores", json={"mall": "yahoo", "items": 1}).get_json()
    creds = remote["credentials"]
    client.post(f"/_sandbox/stores/{remote['id']}/redirect_uris", json={"redirect_uri": "http://t.example/cb"})
    answer = client.post("/yahoo/yconnect/v2/authorization", data={
        "response_type": "code", "client_id": creds["client_id"], "redirect_uri": "http://t.example/cb",
        "scope": "openid", "state": "s", "nonce": "n", "decision": "allow"})
    code = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))["code"]
    with mall.extensions["sandbox.state"].tx() as c:
        c.execute("UPDATE oauth_codes SET expires_at = expires_at - 601 WHERE code = ?", (code,))
    exchange = client.post("/yahoo/yconnect/v2/token", data={"grant_type": "authorization_code", "code": code,
                                                             "redirect_uri": "http://t.example/cb"},
                           auth=(creds["client_id"], creds["client_secret"]))
    assert exchange.status_code == 400 and exchange.get_json()["error"] == "invalid_grant"
    mall.extensions["sandbox.state"].close()


def test_shopify_is_asked_for_the_order_scope_and_the_mall_grants_what_its_consent_page_listed(
        app, make, sandbox, client, auth):
    shop = Authorizing(app, make, sandbox, "shopify")
    auth.login(role="admin")
    consent_url = shop.start(client)
    asked = dict(parse_qsl(urlsplit(consent_url).query))["scope"].split(",")
    # Stock sync, and the orders query and orders/* webhooks of the order catch-up (docs/malls/shopify.md).
    assert set(asked) == {"read_inventory", "write_inventory", "read_products", "read_locations", "read_orders"}
    page = requests.get(consent_url, timeout=30).text
    listed = re.findall(r"<li>([a-z_]+)</li>", page.split('<ul class="scopes">')[1].split("</ul>")[0])
    assert listed == asked

    answer = dict(parse_qsl(urlsplit(shop.consent(consent_url, "allow")).query))
    creds = shop.remote["credentials"]
    token = requests.post(f"{shop.remote['endpoint']}/admin/oauth/access_token", timeout=30, json={
        "client_id": creds["client_id"], "client_secret": creds["client_secret"], "code": answer["code"]}).json()
    assert token["scope"].split(",") == listed


@pytest.mark.parametrize("mall", ["yahoo", "amazon"])
def test_a_refresh_token_the_mall_refuses_points_the_connection_test_at_the_button(app, make, sandbox, client, auth,
                                                                                   mall):
    remote = sandbox.create_store(mall, items=1)
    store = make.store(mall=mall, endpoint=remote["endpoint"], secrets=remote["credentials"])
    sandbox.faults(remote["id"], auth="revoked")  # the token endpoint answers invalid_grant
    auth.login(role="admin")
    fragment = client.post(f"/settings/stores/{store.id}/test", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "✗" in fragment and "invalid_grant" in fragment
    assert "「モールで認可」のボタン" in fragment and "貼り付けることもできます" in fragment
    assert "モールで認可" in client.get(f"/settings/stores/{store.id}").get_data(as_text=True)  # the button is there
