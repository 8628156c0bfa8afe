"""認可ボタン in a real browser: a Yahoo!ショッピング sandbox store entered with only its application's ID and
secret; the shop registers Tatenpo's callback URL on the mall's app page, clicks the button, allows Tatenpo on
the mall's consent page (許可する) and comes back to the store's settings; then a stock edit is pushed with the
tokens the authorization gave and the mall shows the new quantity."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import set_up_admin

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shop(live, tmp_path_factory):
    """A sandbox Yahoo store; in Tatenpo with its seller ID and application credentials only (no token), 即時同期,
    its listings imported and the support center's application completed (by script)."""
    mall = live.sandbox.create_store("yahoo", items=3)
    app_credentials = {key: mall["credentials"][key] for key in ("seller_id", "client_id", "client_secret")}
    args = ["stores", "add", "--mall", "yahoo", "--name", "Yahoo認可テスト店", "--endpoint", mall["endpoint"],
            "--auto-sync", "--immediate-sync"]
    for key, value in app_credentials.items():
        args += ["--credential", f"{key}={value}"]
    store = live.flask_json(*args)
    application = live.flask_json("support", "apply", "--company", "株式会社テスト", "--contact", "山田", "--malls", "yahoo")
    live.flask("support", "complete", str(application["id"]))
    csv_path = tmp_path_factory.mktemp("csv") / "quantity.csv"
    csv_path.write_bytes(live.sandbox.listing_csv(mall["id"]))
    live.flask("listings", "import", "--store", str(store["id"]), str(csv_path), "--create-products")
    return {"mall": mall, "store": store}


def test_authorize_a_yahoo_store_with_the_button_then_push_stock(page, live, shop):
    set_up_admin(page, live)
    store_page = f"{live.url}/settings/stores/{shop['store']['id']}"
    page.goto(store_page)
    section = page.locator("#authorize")
    expect(section).to_contain_text("モールで認可")
    callback = section.locator("code.callback-url").inner_text().strip()
    assert callback == f"{live.url}/authorize/yahoo/callback"
    page.shot("settings-with-button")

    # The shop registers the callback URL with its application at the mall (the sandbox's app page).
    page.goto(f"{live.sandbox.url}/stores/{shop['mall']['id']}/app")
    page.locator("input[name=redirect_uri]").fill(callback)
    page.get_by_role("button", name="登録").click()
    expect(page.locator("ul.redirect-uris")).to_contain_text(callback)
    page.shot("mall-app-callback-registered")

    # The button → the mall's consent page → 許可する → back on the store's settings page.
    page.goto(store_page)
    page.get_by_role("link", name="Yahoo! ID連携で認可する").click()
    page.wait_for_url(re.compile(re.escape(live.sandbox.url) + r"/yahoo/yconnect/v2/authorization"))
    expect(page.locator("h1")).to_contain_text("アプリケーションの認可")
    expect(page.locator("main")).to_contain_text(shop["mall"]["name"])
    page.shot("mall-consent")
    page.get_by_role("button", name="許可する").click()
    page.wait_for_url(re.compile(re.escape(store_page) + r"(#authorize)?$"))
    expect(page.locator(".flash-success")).to_contain_text("認可が完了しました")
    page.shot("authorized")
    # The tokens are stored (shown as 設定済み, never echoed) and the connection test passes with them.
    expect(page.locator("#cred_access_token")).to_have_attribute("placeholder", "設定済み")
    expect(page.locator("#cred_refresh_token")).to_have_attribute("placeholder", "設定済み")
    page.get_by_role("button", name="接続テスト").click()
    expect(page.locator(f"#connection-{shop['store']['id']} .ok")).to_contain_text("✓")

    # The pushes refused before (no token) were due again the moment the tokens were stored: the row waits
    # (同期待ち, polling) and turns ✓ by itself when they land.
    page.goto(live.url + "/products")
    row = page.locator("table.stock-table tbody tr.stock-row").first
    row_id = row.get_attribute("id")
    expect(page.locator(f"#{row_id} .badge.sync")).to_have_attribute("data-state", "ok", timeout=60_000)
    page.shot("refused-pushes-landed")

    # A stock edit is pushed at once (即時同期) with the new token: the row turns ✓ and the mall shows it.
    quantity = max(item["quantity"] for item in live.sandbox.items(shop["mall"]["id"])) + 7  # shown nowhere yet
    row.locator("a.stock-edit").click()
    page.locator(f"#{row_id} input.stock-input").fill(str(quantity))
    page.locator(f"#{row_id} input.stock-input").press("Enter")
    expect(page.locator(f"#{row_id} a.stock-edit")).to_have_text(str(quantity))  # the saved row replaced the old
    badge = page.locator(f"#{row_id} .badge.sync")
    expect(badge).to_have_attribute("data-state", "ok", timeout=60_000)
    page.shot("pushed")

    page.goto(shop["mall"]["page"])
    shown = page.locator("td.num[data-code]").filter(has_text=re.compile(rf"^\s*{quantity}\s*$"))
    expect(shown).to_have_count(1)
    page.shot("mall-shows-the-quantity")

