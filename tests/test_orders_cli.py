"""`flask orders list|show|ship|cancel|reparse` against the real database and Redis: what the 受注 screens do,
from the shell, with a clear failure (and nothing written) for an unknown or ambiguous 受注番号."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tatenpo.models import InboundMail, MailStatus, Order, Product, Store
from tatenpo.orders import book, intake
from tatenpo.platform.extensions import db

FIXTURES = Path(__file__).parent / "fixtures" / "mails"


@dataclass
class Line:
    item_code: str
    quantity: int
    variant_code: str = ""
    choices: str = ""
    title: str = "テスト商品"
    unit_price: int | None = 1000


@dataclass
class Printed:
    number: str
    lines: list[Line] = field(default_factory=list)
    ordered_at: datetime | None = None


@pytest.fixture
def shop(app, make):
    """Two stores that each sold 受注番号 A-100 (malls number orders per shop), one tea product (10 in stock)."""
    rakuten = make.store("rakuten", order_mail_address="order-1-aa@orders.tatenpo.local")
    yahoo = make.store("yahoo")
    tea = make.product(code="TEA-1", on_hand=10)
    make.listing(rakuten, tea, item_code="tea-1")
    make.listing(yahoo, tea, item_code="tea-1")
    with app.app_context():
        for store_id, number, quantity in ((rakuten.id, "A-100", 2), (yahoo.id, "A-100", 1), (rakuten.id, "R-200", 3)):
            book.record(db.session.get(Store, store_id), Printed(number, [Line("tea-1", quantity)]), source="mail")
        db.session.commit()
    return type("Shop", (), dict(rakuten=rakuten, yahoo=yahoo, tea=tea))


def stock(app, product_id: int) -> tuple[int, int]:
    with app.app_context():
        product = db.session.get(Product, product_id)
        return product.on_hand, product.allocated


def run(runner, *args: str):
    return runner.invoke(args=["orders", *args])


def test_list_prints_every_order_and_filters_by_store_and_status(app, shop, runner):
    result = run(runner, "list")
    assert result.exit_code == 0, result.output
    assert result.output.count("A-100") == 2 and "R-200" in result.output and "tea-1 × 3" in result.output

    only_yahoo = json.loads(run(runner, "list", "--store", str(shop.yahoo.id), "--json").output)
    assert [(o["number"], o["store_id"], o["lines"][0]["quantity"]) for o in only_yahoo] == [
        ("A-100", shop.yahoo.id, 1)]
    assert run(runner, "list", "--status", "shipped").output.strip() == "no orders"


def test_show_prints_lines_stock_sources_and_history_and_answers_json(app, shop, runner):
    result = run(runner, "show", "R-200")
    assert result.exit_code == 0, result.output
    assert "R-200" in result.output and "tea-1 × 3" in result.output and "TEA-1" in result.output
    assert "stock: allocated" in result.output and "came by mail" in result.output

    data = json.loads(run(runner, "show", "A-100", "--store", str(shop.yahoo.id), "--json").output)
    assert (data["store_id"], data["status"], data["sources"]) == (shop.yahoo.id, "received", ["mail"])
    assert data["lines"][0]["stock"] == "allocated" and data["lines"][0]["product_code"] == "TEA-1"
    assert [(h["kind"], h["allocated_change"]) for h in data["history"]] == [("order", 1)]
    assert data["mails"] == []


def test_show_lists_the_mails_an_order_came_in(app, make, runner):
    store = make.store("rakuten", order_mail_address="order-9-zz@orders.tatenpo.local")
    result = runner.invoke(args=["orders", "import-mail", "--store", str(store.id),
                                 str(FIXTURES / "rakuten-order-iso2022jp.eml")])
    assert result.exit_code == 0, result.output

    data = json.loads(run(runner, "show", "123456-20250314-0123456789", "--json").output)

    assert [(m["via"], m["status"]) for m in data["mails"]] == [("shell", "order")]
    assert "mail " in run(runner, "show", "123456-20250314-0123456789").output


def test_an_unknown_number_fails_clearly(app, shop, runner):
    result = run(runner, "show", "NO-SUCH")
    assert result.exit_code != 0 and "no order NO-SUCH" in result.output
    unknown_store = run(runner, "ship", "R-200", "--store", "999")
    assert unknown_store.exit_code != 0 and "no store 999" in unknown_store.output
    assert stock(app, shop.tea.id) == (10, 6)


def test_a_number_in_two_stores_needs_the_store_and_nothing_is_written(app, shop, runner):
    result = run(runner, "ship", "A-100")

    assert result.exit_code != 0
    assert f"exists in stores {shop.rakuten.id}, {shop.yahoo.id}" in result.output and "--store" in result.output
    assert stock(app, shop.tea.id) == (10, 6)


def test_ship_moves_stock_once_and_a_second_ship_fails_and_changes_nothing(app, shop, runner):
    result = run(runner, "ship", "A-100", "--store", str(shop.rakuten.id))
    assert result.exit_code == 0, result.output
    assert "A-100" in result.output and "shipped" in result.output
    assert stock(app, shop.tea.id) == (8, 4)

    again = run(runner, "ship", "A-100", "--store", str(shop.rakuten.id))

    assert again.exit_code != 0 and "出荷済み" in again.output
    assert stock(app, shop.tea.id) == (8, 4)
    data = json.loads(run(runner, "ship", "R-200", "--json").output)
    assert data["status"] == "shipped" and stock(app, shop.tea.id) == (5, 1)


@pytest.mark.parametrize("restock, on_hand", [((), 8), (("--restock",), 10)])
def test_cancel_of_a_shipped_order_restocks_only_when_asked(app, shop, runner, restock, on_hand):
    run(runner, "ship", "A-100", "--store", str(shop.rakuten.id))

    result = run(runner, "cancel", "A-100", "--store", str(shop.rakuten.id), *restock)

    assert result.exit_code == 0, result.output
    assert "cancelled" in result.output
    assert stock(app, shop.tea.id) == (on_hand, 4)
    again = run(runner, "cancel", "A-100", "--store", str(shop.rakuten.id), "--json")
    assert again.exit_code != 0 and stock(app, shop.tea.id) == (on_hand, 4)


def test_cancel_of_a_received_order_releases_it_and_answers_json(app, shop, runner):
    data = json.loads(run(runner, "cancel", "R-200", "--json").output)

    assert data["status"] == "cancelled" and data["lines"][0]["stock"] == "released"
    assert stock(app, shop.tea.id) == (10, 3)


@pytest.fixture
def mails(app, shop):
    """Three stored mails of the 楽天 store: a failed one, a cancellation notice, and one not read yet."""
    with app.app_context():
        store = db.session.get(Store, shop.rakuten.id)
        ids = [intake.receive((FIXTURES / name).read_bytes(), store, recipient=store.order_mail_address, via="smtp").id
               for name in ("rakuten-broken-no-order-number.eml", "rakuten-cancellation.eml",
                            "rakuten-order-iso2022jp.eml")]
        db.session.get(InboundMail, ids[0]).status = MailStatus.FAILED.value
        db.session.get(InboundMail, ids[1]).status = MailStatus.IGNORED.value
        db.session.commit()
    return ids


def test_reparse_failed_reads_only_the_failed_mails(app, mails, runner):
    result = run(runner, "reparse", "--failed")

    assert result.exit_code == 1  # the broken mail still fails
    assert f"mail {mails[0]}: failed" in result.output
    assert f"mail {mails[1]}" not in result.output and f"mail {mails[2]}" not in result.output


def test_reparse_reads_every_mail_and_answers_json(app, mails, runner):
    result = run(runner, "reparse", "--json")

    outcomes = json.loads(result.output)
    assert [(o["mail_id"], o["status"]) for o in outcomes] == [
        (mails[0], "failed"), (mails[1], "ignored"), (mails[2], "order")]
    assert outcomes[2]["order_number"] == "123456-20250314-0123456789"
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Order)) == 4
    # Read again: the same order, nothing moved twice.
    again = run(runner, "reparse")
    assert "already known" in again.output
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Order)) == 4


def test_reparse_with_nothing_to_read_says_so(app, runner):
    result = run(runner, "reparse", "--failed")
    assert result.exit_code == 0 and "no mails to read" in result.output
