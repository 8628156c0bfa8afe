"""A sale, as the shop sees it in a real browser against a running installation: a buyer presses 購入 on the
sandbox 楽天 store's page → the mall's order mail reaches Tatenpo's SMTP receiver and the order shows on the
受注 page → the sandbox Yahoo! store, which sells the same product, shows the stock one lower. Each step is
awaited on what the page shows (Playwright's expect), with a screenshot."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import set_up_admin

pytestmark = pytest.mark.browser

START = 5
PRODUCT = "TT-0001"  # the same SKU on both malls: one product in Tatenpo


def reload_until(page, check, seconds: float = 60) -> None:
    """A page that does not refresh itself (the mall's store page, the 受注 list) is reloaded, as the shop
    would, until `check` — a Playwright expect() — passes; its last failure is raised at the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.reload()


@pytest.fixture(scope="module")
def shop(live, tmp_path_factory):
    """A sandbox 楽天 store (即時同期) and a sandbox Yahoo! store (5-minute schedule: the order pushes at once
    anyway), their listings imported and linked by SKU, 在庫数 5, the application completed and each store's
    order-mail address registered in its mall — all by script, then waited on until both malls show 5."""
    folder = tmp_path_factory.mktemp("order-browser")
    stores = {}
    for mall, immediate in (("rakuten", True), ("yahoo", False)):
        remote = live.sandbox.create_store(mall, items=3)
        args = ["stores", "add", "--mall", mall, "--name", {"rakuten": "楽天受注店", "yahoo": "ヤフー受注店"}[mall],
                "--endpoint", remote["endpoint"], "--auto-sync", "--immediate-sync" if immediate else "--no-immediate-sync"]
        for key, value in remote["credentials"].items():
            args += ["--credential", f"{key}={value}"]
        store = live.flask_json(*args)
        csv_path = folder / f"{mall}.csv"
        csv_path.write_bytes(live.sandbox.listing_csv(remote["id"]))
        live.flask("listings", "import", "--store", str(store["id"]), str(csv_path))
        stores[mall] = {"store": store, "remote": remote}
    stock_csv = folder / "stock.csv"
    stock_csv.write_text(f"商品コード,在庫数\n{PRODUCT},{START}\n", encoding="utf-8")
    live.flask("stock", "import", str(stock_csv))
    application = live.flask_json("support", "apply", "--company", "株式会社受注テスト", "--contact", "山田",
                                  "--malls", "rakuten,yahoo")
    addresses = live.flask_json("support", "complete", str(application["id"]))["order_mail_addresses"]
    for entry in stores.values():
        address = addresses[str(entry["store"]["id"])]
        live.sandbox._call("POST", f"/_sandbox/stores/{entry['remote']['id']}", json={"order_mail": address})
    for entry in stores.values():
        entry["item"] = next(i for i in live.sandbox.items(entry["remote"]["id"]) if i["sku"] == PRODUCT)

    def both_malls_show_start() -> bool:
        return all(live.sandbox.stock(e["remote"]["id"])[(e["item"]["code"], e["item"]["variant"])] == START
                   for e in stores.values())

    deadline = time.monotonic() + 90
    while not both_malls_show_start():
        assert time.monotonic() < deadline, "the first push did not reach both malls"
        time.sleep(0.3)
    return stores


def _stock_cell(page, item):
    return page.locator(f'td[data-code="{item["code"]}"][data-variant="{item["variant"]}"]')


def test_a_purchase_on_rakuten_shows_in_orders_and_lowers_yahoo(page, live, shop):
    set_up_admin(page, live)
    rakuten, yahoo = shop["rakuten"], shop["yahoo"]

    # The buyer on 楽天: 購入 on the product's row; the mall's own count falls at once.
    page.goto(rakuten["remote"]["page"])
    expect(_stock_cell(page, rakuten["item"])).to_have_text(str(START))
    row = page.locator("tr", has=_stock_cell(page, rakuten["item"]))
    row.get_by_role("button", name="購入").click()
    notice = page.locator("p.note[role=status]")
    expect(notice).to_contain_text("注文を受け付けました")
    number = re.search(r"受注番号 ([^\s(（]+)", notice.inner_text()).group(1)
    expect(_stock_cell(page, rakuten["item"])).to_have_text(str(START - 1))
    page.shot("rakuten-purchased")

    # Tatenpo's 受注 page lists the order once its mail has been received and read.
    page.goto(live.url + "/orders")
    order_row = page.locator("table.orders tbody tr", has_text=number)
    reload_until(page, lambda: expect(order_row).to_be_visible(timeout=1_000))
    expect(order_row).to_contain_text("楽天受注店")
    expect(order_row).to_contain_text("× 1")
    page.shot("orders-page")

    # The Yahoo! store, selling the same product, follows without anyone touching it.
    page.goto(yahoo["remote"]["page"])
    reload_until(page, lambda: expect(_stock_cell(page, yahoo["item"])).to_have_text(str(START - 1), timeout=1_000))
    page.shot("yahoo-lowered")
