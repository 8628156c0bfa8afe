"""Shell commands for operators and scripts."""
from __future__ import annotations

import json

from sqlalchemy import select

from tatenpo.models import Product, StockHistory, Store, User
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db


def test_create_user_with_a_role(runner, app):
    result = runner.invoke(args=["create-user", "desk@example.jp", "--password", "long enough pw", "--role", "support"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User))
        assert (user.email, user.role) == ("desk@example.jp", "support")


def test_create_user_refuses_a_short_password(runner, app):
    result = runner.invoke(args=["create-user", "a@example.jp", "--password", "short"])
    assert result.exit_code != 0
    assert "8" in result.output
    with app.app_context():
        assert db.session.scalar(select(User)) is None


def test_stores_add_prints_the_id_and_encrypts_credentials(runner, app):
    result = runner.invoke(args=[
        "stores", "add", "--mall", "yahoo", "--name", "ヤフー本店", "--endpoint", "http://127.0.0.1:5001/yahoo",
        "--credential", "seller_id=snbx-shop", "--credential", "access_token=secret-token-123",
        "--auto-sync", "--safety-stock", "2",
    ])
    assert result.exit_code == 0, result.output
    store_id = int(result.output.strip())
    with app.app_context():
        store = db.session.get(Store, store_id)
        assert (store.mall, store.name, store.auto_sync, store.safety_stock) == ("yahoo", "ヤフー本店", True, 2)
        assert credentials.read(store) == {"seller_id": "snbx-shop", "access_token": "secret-token-123"}
    listed = runner.invoke(args=["stores", "list", "--json"])
    data = json.loads(listed.output)
    assert data[0]["credentials"] == ["access_token", "seller_id"]
    assert "secret-token-123" not in listed.output


def test_stores_add_refuses_an_unknown_mall(runner, app):
    result = runner.invoke(args=["stores", "add", "--mall", "ebay", "--name", "x"])
    assert result.exit_code != 0
    with app.app_context():
        assert db.session.scalar(select(Store)) is None


def test_stock_set_and_show(runner, app, make):
    product = make.product(code="TSHIRT-RED-M", name="Tシャツ 赤 M", on_hand=1)
    store = make.store(name="楽天本店", auto_sync=True)
    make.listing(store, product, item_code="tshirt", variant_code="red-m")
    result = runner.invoke(args=["stock", "set", "TSHIRT-RED-M", "12", "--note", "入荷"])
    assert result.exit_code == 0, result.output
    assert "1 → 12" in result.output
    shown = json.loads(runner.invoke(args=["stock", "show", "TSHIRT-RED-M", "--json"]).output)
    assert (shown["on_hand"], shown["allocated"], shown["sellable"]) == (12, 0, 12)
    [listing] = shown["listings"]
    assert (listing["store"], listing["pending"], listing["pending_quantity"]) == ("楽天本店", True, 12)
    with app.app_context():
        assert db.session.scalar(select(StockHistory.note)) == "入荷"


def test_stock_set_refuses_bad_input_and_changes_nothing(runner, app, make):
    make.product(code="A1", on_hand=3)
    for args in (["stock", "set", "A1", "-5"], ["stock", "set", "A1", "three"], ["stock", "set", "NOPE", "1"]):
        result = runner.invoke(args=args)
        assert result.exit_code != 0, args
    with app.app_context():
        assert db.session.scalar(select(Product.on_hand)) == 3
        assert db.session.scalar(select(StockHistory)) is None


def test_support_apply_and_complete(runner, app, make):
    store = make.store(mall="rakuten")
    result = runner.invoke(args=["support", "apply", "--company", "株式会社テスト", "--contact", "山田", "--malls", "rakuten,yahoo", "--json"])
    assert result.exit_code == 0, result.output
    application = json.loads(result.output)
    assert application["status"] == "pending"
    done = json.loads(runner.invoke(args=["support", "complete", str(application["id"]), "--json"]).output)
    assert done["status"] == "completed"
    with app.app_context():
        assert db.session.get(Store, store.id).order_mail_address.startswith(f"order-{store.id}-")
        from tatenpo.setup import support_center

        assert support_center.covers("rakuten-ftp") and support_center.covers("yahoo") and not support_center.covers("amazon")
