"""`flask listings import` and `flask stock export|import`: the same preview and all-or-nothing rules as the
screens, for scripts (--json) and operators."""
from __future__ import annotations

import json

from sqlalchemy import select

from tatenpo.models import Listing, Product
from tatenpo.platform.extensions import db

from .listing_helpers import FIXTURES, listings_of, product, snapshot


def test_listings_import_prints_the_preview_as_json_on_dry_run_and_writes_nothing(app, runner, make):
    store = make.store(mall="rakuten")
    result = runner.invoke(args=["listings", "import", "--store", str(store.id), str(FIXTURES / "rakuten-normal-item.csv"),
                                 "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["format"] == "rakuten-item" and data["encoding"] == "Shift_JIS (CP932)"
    assert data["counts"]["new"] == 4 and data["counts"]["products_to_create"] == 4
    with app.app_context():
        assert db.session.scalar(select(Listing)) is None


def test_listings_import_imports_and_a_second_run_changes_nothing(app, runner, make):
    store = make.store(mall="rakuten-ftp")
    args = ["listings", "import", "--store", str(store.id), str(FIXTURES / "dl-item.csv"), str(FIXTURES / "dl-select.csv")]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "新規 4" in first.output
    with app.app_context():
        before = snapshot()
    second = runner.invoke(args=args + ["--json"])
    assert json.loads(second.output)["counts"]["unchanged"] == 4
    with app.app_context():
        assert snapshot() == before


def test_listings_import_without_creating_products(app, runner, make):
    store = make.store(mall="amazon")
    result = runner.invoke(args=["listings", "import", "--store", str(store.id), "--no-create-products",
                                 str(FIXTURES / "amazon-listings-ja.txt"), "--json"])
    assert json.loads(result.output)["result"]["unlinked"] == 1
    with app.app_context():
        assert listings_of(store.id)[("AMZ-HK-1", "")].product_id is None
        assert db.session.scalar(select(Product)) is None


def test_listings_import_with_bad_rows_fails_and_names_them(app, runner, make, tmp_path):
    store = make.store(mall="rakuten")
    bad = tmp_path / "bad.csv"
    bad.write_bytes("商品管理番号（商品URL）,SKU管理番号,在庫数\r\nitem-a,sku-1,-2\r\n".encode("cp932"))
    result = runner.invoke(args=["listings", "import", "--store", str(store.id), str(bad)])
    assert result.exit_code != 0
    assert "2行目 在庫数: 在庫数はマイナスにできません（-2）。" in result.output
    with app.app_context():
        assert db.session.scalar(select(Listing)) is None


def test_listings_import_forced_format_and_unknown_store(app, runner, make):
    store = make.store(mall="shopify")
    result = runner.invoke(args=["listings", "import", "--store", str(store.id), "--format", "shopify-inventory",
                                 str(FIXTURES / "shopify-inventory-old.csv"), "--json"])
    assert json.loads(result.output)["format"] == "shopify-inventory"
    missing = runner.invoke(args=["listings", "import", "--store", "999", str(FIXTURES / "generic.csv")])
    assert missing.exit_code != 0 and "no store with id 999" in missing.output


def test_stock_export_then_import_round_trip(app, runner, make, tmp_path):
    make.product(code="A-1", name="髙級① マグ", on_hand=7, allocated=2)
    make.product(code="+PLUS", name="@mention", on_hand=3)
    path = tmp_path / "stock.csv"
    exported = runner.invoke(args=["stock", "export", str(path)])
    assert exported.exit_code == 0, exported.output
    text = path.read_bytes().decode("cp932")
    assert "A-1,髙級① マグ,7,2,5" in text and "'+PLUS,'@mention,3,0,3" in text
    same = runner.invoke(args=["stock", "import", str(path), "--json"])
    assert json.loads(same.output)["counts"] == {"rows": 2, "changed": 0, "unchanged": 2, "errors": 0}
    path.write_bytes(text.replace("A-1,髙級① マグ,7", "A-1,髙級① マグ,12").encode("cp932"))
    dry = runner.invoke(args=["stock", "import", str(path), "--dry-run", "--json"])
    assert json.loads(dry.output)["counts"]["changed"] == 1
    with app.app_context():
        assert product("A-1").on_hand == 7
    done = runner.invoke(args=["stock", "import", str(path)])
    assert done.exit_code == 0, done.output
    with app.app_context():
        assert product("A-1").on_hand == 12
    utf8 = tmp_path / "utf8.csv"
    runner.invoke(args=["stock", "export", str(utf8), "--encoding", "utf-8-sig"])
    assert utf8.read_bytes().startswith(b"\xef\xbb\xbf")


def test_stock_import_with_an_unknown_code_changes_nothing(app, runner, make, tmp_path):
    make.product(code="A-1", on_hand=7)
    path = tmp_path / "stock.csv"
    path.write_bytes("商品コード,在庫数\r\nA-1,9\r\nZZZ,1\r\n".encode("cp932"))
    result = runner.invoke(args=["stock", "import", str(path)])
    assert result.exit_code != 0
    assert "3行目 商品コード: 商品コード「ZZZ」の商品はありません。" in result.output
    with app.app_context():
        assert product("A-1").on_hand == 7
