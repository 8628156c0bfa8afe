"""The support center in a real browser: the shop applies (inline validation while typing, a confirmation
page), a support user completes it, the shop's guide then shows step 1 done, and the notification email is
listed (no mail server configured)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import fill_application, log_in, log_out, set_up_admin, support_completes_the_first_application

pytestmark = pytest.mark.browser


def test_apply_then_support_completes_and_the_guide_follows(page, live):
    set_up_admin(page, live, email="shop@example.jp")
    page.wait_for_url(re.compile(r"/guide"))
    expect(page.locator("#step-1")).to_have_attribute("aria-current", "step")
    page.locator("#step-1 a.button").click()
    page.wait_for_url(re.compile(r"/support/apply"))
    expect(page.locator("#inquiry")).to_have_value("自動受注メール取込みアドレスの申請")
    expect(page.locator("#application_type")).to_have_value("自動受注メール取込・自動在庫同期を開始する")
    page.shot("form")

    # Inline validation: emptying 会社名 says so as soon as one leaves it, without sending the form.
    page.locator("#company").fill("株式会社")
    page.locator("#contact_name").focus()
    expect(page.locator("#company-feedback .error")).to_have_count(0)
    page.locator("#company").fill("")
    page.locator("#contact_name").focus()
    expect(page.locator("#company-feedback")).to_contain_text("会社名を入力してください。")
    page.locator("#contact_email").fill("hanako@example")
    page.locator("#contact_name").focus()
    expect(page.locator("#contact_email-feedback")).to_contain_text("正しいメールアドレス")
    page.shot("inline-errors")

    fill_application(page)
    page.locator("#note").fill("楽天市場に2店舗目を出店予定")
    page.locator("#contact_name").focus()
    expect(page.locator(".feedback .error")).to_have_count(0)
    page.get_by_role("button", name="申請内容を確認する").click()
    expect(page.locator("h1")).to_have_text("申請内容の確認")
    expect(page.locator("dl.facts")).to_contain_text("楽天市場、Yahoo!ショッピング")
    page.shot("confirm")
    page.get_by_role("button", name="申請する").click()
    expect(page.locator(".flash-success")).to_contain_text("2営業日")
    expect(page.locator("h1 .badge")).to_have_text("申請中")
    page.shot("applied")
    log_out(page)

    support_completes_the_first_application(page, live)
    page.goto(live.url + "/support/mail")
    expect(page.locator("table")).to_contain_text("hanako@example.jp")
    page.locator("table a").first.click()
    expect(page.locator("pre.mail")).to_contain_text("楽天市場、Yahoo!ショッピング")
    page.shot("mail")
    log_out(page)

    log_in(page, live, "shop@example.jp")
    page.goto(live.url + "/guide")
    expect(page.locator("#step-1")).to_have_class(re.compile(r"\bdone\b"))
    page.shot("guide-step-1-done")
