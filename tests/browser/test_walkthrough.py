"""The whole seed flow as a new shop walks it, in a real browser against Tatenpo started like `make run`:
set up the admin → apply at the support center → a support user completes it → add a sandbox 楽天市場 store
and a sandbox Yahoo!ショッピング store and pass 接続テスト → download each sandbox store's CSV and import it →
edit one stock inline → ✓ in 在庫同期履歴 → the new stock on the sandbox store's page → the guide shows all
eight steps done. Then the failure path: a wrong password gives ✗ with the login hint on the top page.
A screenshot of each step goes to tests/browser/artifacts/."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import fill_application, log_in, log_out, set_up_admin, support_completes_the_first_application

pytestmark = pytest.mark.browser

SHOP = "shop@example.jp"
STORES = [("rakuten", "楽天テスト本店"), ("yahoo", "ヤフーテスト店")]


def _store_id(page) -> int:
    return int(re.search(r"/settings/stores/(\d+)", page.url).group(1))


def _top(locator) -> float:
    """Where the element is on the page (not the viewport), to notice the layout moving."""
    return locator.evaluate("element => element.getBoundingClientRect().top + window.scrollY")


def test_the_eight_steps_from_a_fresh_install(page, live, tmp_path):
    # Setup: the first visit creates the administrator and lands on the guide, step 1 current.
    set_up_admin(page, live, email=SHOP)
    page.wait_for_url(re.compile(r"/guide"))
    expect(page.locator("#step-1")).to_have_attribute("aria-current", "step")
    page.shot("guide-new-install")

    # Step 1: apply at the support center. The form comes prefilled as docs/FLOW.md says.
    page.locator("#step-1 a.button").click()
    page.wait_for_url(re.compile(r"/support/apply"))
    expect(page.locator("#inquiry")).to_have_value("自動受注メール取込みアドレスの申請")
    expect(page.locator("#application_type")).to_have_value("自動受注メール取込・自動在庫同期を開始する")
    # Inline validation: emptying 会社名 says so as soon as one leaves it, without sending the form.
    # A message arriving (or going) never moves the fields below it: a click aimed at 楽天市場 while an
    # answer comes in must still land on 楽天市場.
    malls_top = _top(page.get_by_label("楽天市場"))
    page.locator("#company").fill("株式会社")
    page.locator("#contact_name").focus()
    expect(page.locator("#company-feedback .error")).to_have_count(0)
    page.locator("#company").fill("")
    page.locator("#contact_name").focus()
    expect(page.locator("#company-feedback")).to_contain_text("会社名を入力してください。")
    page.locator("#contact_email").fill("hanako@example")
    page.locator("#contact_name").focus()
    expect(page.locator("#contact_email-feedback")).to_contain_text("正しいメールアドレス")
    assert _top(page.get_by_label("楽天市場")) == malls_top
    page.shot("application-inline-errors")
    fill_application(page)
    assert _top(page.get_by_label("楽天市場")) == malls_top
    page.locator("#note").fill("楽天市場に2店舗目を出店予定")
    page.locator("#contact_name").focus()
    expect(page.locator(".feedback .error")).to_have_count(0)
    page.get_by_role("button", name="申請内容を確認する").click()
    expect(page.locator("h1")).to_have_text("申請内容の確認")
    expect(page.locator("dl.facts")).to_contain_text("楽天市場、Yahoo!ショッピング")
    page.shot("application-confirm")
    page.get_by_role("button", name="申請する").click()
    expect(page.locator(".flash-success")).to_contain_text("2営業日")
    expect(page.locator("h1 .badge")).to_have_text("申請中")
    page.shot("applied")
    log_out(page)

    # A support user completes it; the applicant's notification is kept (no mail server) and listed.
    support_completes_the_first_application(page, live)
    page.goto(live.url + "/support/mail")
    expect(page.locator("table")).to_contain_text("hanako@example.jp")
    page.locator("table a").first.click()
    expect(page.locator("pre.mail")).to_contain_text("楽天市場、Yahoo!ショッピング")
    page.shot("notification-mail")
    log_out(page)
    log_in(page, live, SHOP)
    page.goto(live.url + "/guide")
    expect(page.locator("#step-1")).to_have_class(re.compile(r"\bdone\b"))

    # Steps 2 and 5: add a sandbox store per mall (使用中, 即時同期) and pass 接続テスト.
    store_ids = {}
    for mall, name in STORES:
        page.goto(live.url + "/settings/stores/new")
        page.locator(f'a[href$="/settings/stores/new/{mall}"]').click()
        page.locator("#name").fill(name)
        page.locator('input[name="auto_sync"][value="on"]').check()
        page.locator("#immediate_sync").check()
        page.locator("#sandbox_store").select_option("new")
        page.locator("form.store-form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/settings/stores/\d+$"))
        store_ids[mall] = _store_id(page)
        page.get_by_role("button", name="接続テスト").click()
        expect(page.locator(f"#connection-{store_ids[mall]} .ok")).to_contain_text("✓")
        page.shot(f"{mall}-connection-test")

    # Steps 3 and 4: download each sandbox store's listing CSV from its page and import it.
    for mall, name in STORES:
        page.goto(live.url + f"/guide?store={store_ids[mall]}")
        expect(page.locator("#step-2")).to_have_class(re.compile(r"\bdone\b"))
        page.locator("#step-3").get_by_role("link", name="サンドボックスモール").click()
        expect(page.locator("h1")).to_contain_text("サンドボックス")
        with page.expect_download() as download:
            page.locator("a[href*='listing.csv']").first.click()
        csv_path = tmp_path / f"{mall}-{download.value.suggested_filename}"
        download.value.save_as(csv_path)
        page.shot(f"{mall}-sandbox-page")

        page.goto(live.url + "/imports")
        page.locator("#store_id").select_option(str(store_ids[mall]))
        page.locator("#files").set_input_files(str(csv_path))
        page.locator("main form button.primary").click()
        page.shot(f"{mall}-import-preview")
        page.locator("main form button.primary:not([disabled])").last.click()
        expect(page.locator("#import-progress .ok")).to_contain_text("✓", timeout=60_000)
        page.shot(f"{mall}-imported")

    # Step 6: edit one stock inline in 販売データ (the Rakuten store's first linked listing).
    rakuten = store_ids["rakuten"]
    page.goto(live.url + f"/listings?store={rakuten}&link=linked")
    row = page.locator("table.listing-table tbody tr.listing-row").first
    row_id = row.get_attribute("id")
    listing_code = row.locator("td.code").first.inner_text().strip()
    item_code = row.locator("td.code").nth(1).inner_text().strip().splitlines()[0]
    row.locator("a.stock-edit").click()
    box = page.locator(f"#{row_id} input.stock-input")
    expect(box).to_be_focused()
    box.fill("37")
    box.press("Enter")
    badge = page.locator(f"#{row_id} .badge.sync")
    expect(badge).to_contain_text("同期待ち")
    page.shot("edited-waiting")
    expect(badge).to_have_attribute("data-state", "ok", timeout=60_000)
    page.shot("edited-synced")

    # Step 7: ✓ in 在庫同期履歴.
    page.goto(live.url + f"/sync?store={rakuten}")
    history_row = page.locator("table tbody tr", has_text=listing_code).first
    expect(history_row.locator("span.ok", has_text="✓")).to_be_visible()
    page.shot("sync-history")

    # Step 8: the sandbox store's page shows the new stock.
    page.goto(live.url + f"/guide?store={rakuten}")
    page.locator("#step-8").get_by_role("link", name="サンドボックスモールで在庫数を見る").click()
    cell = page.locator(f'td[data-code="{item_code}"]').first
    expect(cell).to_contain_text("37")
    page.shot("sandbox-store-page")

    # The guide: all eight steps done for this store.
    page.goto(live.url + f"/guide?store={rakuten}")
    expect(page.locator("li.step.done")).to_have_count(8, timeout=60_000)
    expect(page.locator(".flash-success")).to_contain_text("8つのステップがすべて完了しました")
    page.shot("guide-all-done")

    # The failure path: a wrong password on the Yahoo store → ✗ with the login hint on the top page.
    yahoo = store_ids["yahoo"]
    page.goto(live.url + f"/settings/stores/{yahoo}")
    secret = page.locator("fieldset.credentials input[type=password]").first
    secret.fill("wrong-password")
    page.locator("form.store-form button[type=submit]").click()
    page.goto(live.url + f"/listings?store={yahoo}&link=linked")
    row = page.locator("table.listing-table tbody tr.listing-row").first
    row_id = row.get_attribute("id")
    row.locator("a.stock-edit").click()
    page.locator(f"#{row_id} input.stock-input").fill("5")
    page.locator(f"#{row_id} input.stock-input").press("Enter")
    expect(page.locator(f"#{row_id} .badge.sync")).to_have_attribute("data-state", "failed", timeout=60_000)
    page.goto(live.url + "/")
    failing = page.locator("section[aria-labelledby='failing-stores-heading']")
    expect(failing).to_contain_text("ヤフーテスト店")
    expect(failing.locator("summary.ng")).to_contain_text("✗")
    expect(failing.locator("summary.ng")).to_contain_text("アクセストークン")  # Yahoo's word for its login secret
    # The login check (docs/FLOW.md), marked as the cause, right there on the top page.
    login_check = failing.locator("li.check-ng")
    expect(login_check).to_have_count(1)
    expect(login_check).to_contain_text("ログインID")
    expect(login_check).to_contain_text("✗")
    page.shot("top-page-login-failure")
    # One click further, 在庫同期履歴 shows the same ✗ with the same checks.
    failing.get_by_role("link", name="ヤフーテスト店").click()
    failure = page.locator("details.failure").first
    failure.locator("summary").click()
    expect(failure.locator("li.check-ng")).to_contain_text("ログインID")
    page.shot("sync-history-login-hint")
