"""Inline stock editing in a real browser against a running installation: click or Enter opens the cell,
Enter saves, Esc cancels, a bad number is refused inline, the row shows 同期待ち at once and turns ✓ when
the worker's push lands — and the sandbox mall then shows the new stock. Also bulk edit and the product page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import set_up_admin

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shop(live, tmp_path_factory):
    """A sandbox Rakuten store with 即時同期, its listings imported, and a completed application (by script)."""
    mall = live.sandbox.create_store("rakuten", items=4)
    csv_path = tmp_path_factory.mktemp("csv") / "normal-item.csv"
    csv_path.write_bytes(live.sandbox.listing_csv(mall["id"]))
    args = ["stores", "add", "--mall", "rakuten", "--name", "楽天テスト店", "--endpoint", mall["endpoint"],
            "--auto-sync", "--immediate-sync"]
    for key, value in mall["credentials"].items():
        args += ["--credential", f"{key}={value}"]
    store = live.flask_json(*args)
    application = live.flask_json("support", "apply", "--company", "株式会社テスト", "--contact", "山田", "--malls", "rakuten")
    live.flask("support", "complete", str(application["id"]))
    live.flask("listings", "import", "--store", str(store["id"]), str(csv_path), "--create-products")
    return {"mall": mall, "store": store}


def _first_row(page):
    return page.locator("table.stock-table tbody tr.stock-row").first


def test_edit_a_stock_with_the_keyboard_and_watch_it_reach_the_mall(page, live, shop):
    set_up_admin(page, live)
    page.wait_for_url(re.compile(r"/guide"))
    page.shot("guide-after-setup")

    page.goto(live.url + "/products")
    row = _first_row(page)
    code = row.locator("td.code").inner_text().strip()
    row_id = row.get_attribute("id")
    page.shot("products")

    # Click opens the cell with the number selected; a word is refused inline and nothing is saved.
    row.locator("a.stock-edit").click()
    box = page.locator(f"#{row_id} input.stock-input")
    expect(box).to_be_focused()
    box.fill("たくさん")
    box.press("Enter")
    expect(page.locator(f"#{row_id} .error")).to_contain_text("整数ではありません")
    expect(page.locator(f"#{row_id} input.stock-input")).to_be_focused()
    page.shot("error-inline")

    # Enter saves: the row shows 同期待ち at once, then ✓ when the worker's push lands, without a reload.
    page.locator(f"#{row_id} input.stock-input").fill("７")
    page.locator(f"#{row_id} input.stock-input").press("Enter")
    badge = page.locator(f"#{row_id} .badge.sync")
    expect(badge).to_have_attribute("data-state", "pending")
    expect(badge).to_contain_text("同期待ち")
    expect(page.locator(f"#{row_id} a.stock-edit")).to_have_text("7")
    expect(page.locator(f"#{row_id} a.stock-edit")).to_be_focused()
    page.shot("waiting-to-sync")
    page.evaluate("window.__sameDocument = true")
    expect(badge).to_have_attribute("data-state", "ok", timeout=60_000)
    expect(badge).to_contain_text("✓")
    assert page.evaluate("window.__sameDocument") is True  # the row polled; the page never reloaded
    page.shot("synced")

    shown = {f"{c}" if not v or v == "normal-inventory" else f"{v}": q for (c, v), q in live.sandbox.stock(shop["mall"]["id"]).items()}
    assert 7 in shown.values()

    # Esc cancels: the typed number is dropped and the focus returns to the cell.
    link = page.locator(f"#{row_id} a.stock-edit")
    link.focus()
    page.keyboard.press("Enter")
    box = page.locator(f"#{row_id} input.stock-input")
    expect(box).to_be_focused()
    box.fill("999")
    box.press("Escape")
    expect(page.locator(f"#{row_id} a.stock-edit")).to_have_text("7")
    expect(page.locator(f"#{row_id} a.stock-edit")).to_be_focused()
    page.reload()
    expect(page.locator(f"#{row_id} a.stock-edit")).to_have_text("7")

    # The product page: stock, listings with what was pushed and read back, history with its chart.
    page.locator(f"#{row_id} td.code a").click()
    expect(page.locator("h1")).to_contain_text(code)
    expect(page.locator("#on-hand")).to_have_text("7")
    expect(page.locator("figure.chart svg polyline")).to_be_visible()
    expect(page.locator("ol.timeline li").first).to_contain_text("手入力")
    expect(page.locator("#product-listings tbody tr").first).to_contain_text("楽天テスト店")
    page.shot("product-page")


def test_bulk_edit_of_selected_rows(page, live, shop):
    page.goto(live.url + "/login")
    page.locator("#email").fill("admin@example.jp")
    from ..conftest import PASSWORD

    page.locator("#password").fill(PASSWORD)
    page.locator("main form [type=submit]").click()
    page.goto(live.url + "/products")
    rows = page.locator("table.stock-table tbody tr.stock-row")
    # Typing a search refreshes the table alone (full-width works) and the address follows.
    count = rows.count()
    page.locator("#q").type("ＴＴ－０００３", delay=30)
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=%EF%BC%B4|q=ＴＴ"))
    page.locator("#q").fill("")
    expect(rows).to_have_count(count)
    rows.nth(1).locator("input.row-select").check()
    rows.nth(2).locator("input.row-select").check()
    page.locator("#bulk-mode").select_option("set")
    page.locator("#bulk-quantity").fill("3")
    page.get_by_role("button", name="選択した行に適用").click()
    expect(page.locator(".flash-success")).to_contain_text("2 商品の在庫数を変更しました")
    expect(rows.nth(1).locator("a.stock-edit")).to_have_text("3")
    expect(rows.nth(2).locator("a.stock-edit")).to_have_text("3")
    # While the rows poll for their push, a ticked box stays ticked and the keyboard focus stays put.
    expect(rows.nth(1).locator(".badge.sync")).to_have_attribute("data-state", "pending")
    rows.nth(1).locator("input.row-select").check()
    rows.nth(2).locator("a.stock-edit").focus()
    expect(rows.nth(1).locator(".badge.sync")).to_have_attribute("data-state", "ok", timeout=60_000)
    expect(rows.nth(2).locator(".badge.sync")).to_have_attribute("data-state", "ok", timeout=60_000)
    expect(rows.nth(1).locator("input.row-select")).to_be_checked()
    expect(rows.nth(2).locator("a.stock-edit")).to_be_focused()
    rows.nth(1).locator("input.row-select").uncheck()
    # Select-all then a negative change that would go below zero: refused, nothing changed.
    page.locator("input.select-all").check()
    page.locator("#bulk-mode").select_option("adjust")
    page.locator("#bulk-quantity").fill("-5")
    page.get_by_role("button", name="選択した行に適用").click()
    expect(page.locator(".flash-error")).to_contain_text("何も変更していません")
    expect(rows.nth(1).locator("a.stock-edit")).to_have_text("3")
    page.shot("bulk-refused")
