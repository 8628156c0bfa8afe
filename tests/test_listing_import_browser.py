"""販売取込 in a real browser against a running installation (launcher: gunicorn, RQ worker, sandbox malls):
download the sandbox mall's CSV, upload it, see the preview the worker read (the page polls until it is
ready), try one item first, confirm, watch the htmx progress bar finish, and find the listings linked. No
console or CSP errors on any page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .browser.conftest import browser, live, log_in, page, set_up_admin  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

# The worker reads the upload for the preview while the page polls (a busy machine takes seconds).
PREVIEW_WAIT = 60_000


def enter(page, live) -> None:  # noqa: F811
    """Logged in as the administrator, creating it on a fresh installation."""
    page.goto(live.url + "/")
    if "/setup" in page.url:
        set_up_admin(page, live)
    else:
        log_in(page, live, "admin@example.jp")
    expect(page.locator("header .account")).to_be_visible()


def test_import_a_sandbox_csv_one_item_first_then_all(page, live, tmp_path):  # noqa: F811
    mall = live.sandbox.create_store("rakuten", items=5)
    csv_path = tmp_path / "normal-item.csv"
    csv_path.write_bytes(live.sandbox.listing_csv(mall["id"]))
    store = live.flask_json("stores", "add", "--mall", "rakuten", "--name", "楽天ブラウザ店", "--endpoint", mall["endpoint"])

    enter(page, live)
    page.goto(live.url + "/imports")
    page.locator("#store_id").select_option(str(store["id"]))
    page.locator("#files").set_input_files(str(csv_path))
    page.shot("upload")
    page.locator("main form button[type=submit]").first.click()

    # The preview, once the worker has read the file (the page reloads itself): format, encoding and counts;
    # nothing saved yet.
    page.wait_for_url(re.compile(r"/imports/\d+$"))
    expect(page.locator("dl.facts")).to_contain_text("楽天 normal-item.csv（SKU形式）", timeout=PREVIEW_WAIT)
    expect(page.locator("dl.facts")).to_contain_text("Shift_JIS (CP932)")
    expect(page.locator("dl.stats")).to_contain_text("新規の販売データ")
    page.shot("preview")

    # まず1〜数商品で試す: only the first item.
    page.locator("input[name=scope][value=first]").check()
    page.locator("#first_items").fill("1")
    page.get_by_role("button", name="プレビューを更新").click()
    expect(page.locator("dl.stats div").first.locator("dd")).to_have_text("1", timeout=PREVIEW_WAIT)
    page.get_by_role("button", name="取り込む").click()
    # The progress bar polls until the worker is done; the page then shows the result.
    expect(page.locator("h1 .badge")).to_have_text("完了", timeout=60_000)
    expect(page.locator("#import-progress")).to_contain_text("✓")
    page.shot("one-item-done")

    # Then the whole file: the item already imported is unchanged.
    page.goto(live.url + f"/imports?store={store['id']}")
    page.locator("#files").set_input_files(str(csv_path))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/imports/\d+$"))
    page.get_by_role("button", name="取り込む").click(timeout=PREVIEW_WAIT)
    expect(page.locator("h1 .badge")).to_have_text("完了", timeout=60_000)
    page.shot("all-done")

    shown = live.flask_json("stock", "show", "TT-0002-S")
    assert [l["store"] for l in shown["listings"]] == ["楽天ブラウザ店"]
    page.goto(live.url + "/imports")
    expect(page.locator("table").first).to_contain_text("normal-item.csv")
    page.shot("history")


def test_a_bad_file_shows_its_errors_and_the_report_downloads(page, live, tmp_path):  # noqa: F811
    store = live.flask_json("stores", "add", "--mall", "yahoo", "--name", "Yahoo ブラウザ店")
    bad = tmp_path / "quantity.csv"
    bad.write_bytes("code,sub-code,quantity\r\nitem-1,,-4\r\nitem-2,,多い\r\n".encode("cp932"))
    enter(page, live)
    page.goto(live.url + "/imports")
    page.locator("#store_id").select_option(str(store["id"]))
    page.locator("#files").set_input_files(str(bad))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/imports/\d+$"))
    errors = page.locator("table.errors")
    expect(errors).to_contain_text("在庫数はマイナスにできません（-4）", timeout=PREVIEW_WAIT)
    expect(errors).to_contain_text("「多い」は整数ではありません")
    expect(page.get_by_role("button", name="取り込む")).to_be_disabled()
    page.shot("errors")
    with page.expect_download() as download:
        page.get_by_role("link", name="エラーレポートをダウンロード（CSV）").click()
    text = open(download.value.path(), encoding="utf-8-sig").read()
    assert "quantity.csv,2,quantity," in text and "quantity.csv,3,quantity," in text
