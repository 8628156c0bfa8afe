"""販売取込: every mall's file is recognised, read exactly, linked by code and imported all-or-nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tatenpo.listings import importer
from tatenpo.models import ImportJob, StockChangeKind, StockHistory, Store, SyncEntry
from tatenpo.platform.extensions import db

from .listing_helpers import import_file, listings_of, product, snapshot, upload


def test_rakuten_sku_format_creates_listings_and_products_with_the_files_stock(app, make):
    store = make.store(mall="rakuten", auto_sync=False)
    with app.app_context():
        job = import_file(store.id, "rakuten-normal-item.csv")
        assert job.status == "done"
        assert job.format == "rakuten-item"
        assert job.encoding == "Shift_JIS (CP932)"
        listings = listings_of(store.id)
        assert set(listings) == {
            ("tshirt", "tshirt-red"), ("tshirt", "tshirt-blue"), ("mug", "normal-inventory"),
            ("sticker", "normal-inventory"),
        }
        red = listings[("tshirt", "tshirt-red")]
        # システム連携用SKU番号 is the code shops link on; the title keeps ㈱髙① and the variation.
        assert red.code == "TS-RED"
        assert red.title == "㈱髙島屋コラボ Tシャツ① 赤"
        assert red.mall_quantity == 5
        assert red.product.code == "TS-RED" and red.product.on_hand == 5
        assert listings[("tshirt", "tshirt-blue")].code == "tshirt-blue"
        # An item without variations is SKU normal-inventory and links on 商品管理番号.
        assert listings[("mug", "normal-inventory")].product.code == "mug"
        assert product("sticker").name == "ステッカー～限定～"
        assert product("sticker").on_hand == 7
        history = db.session.scalars(select(StockHistory).where(StockHistory.product_code == "sticker")).all()
        assert [(h.change, h.quantity_after, h.kind) for h in history] == [(7, 7, int(StockChangeKind.LISTING_IMPORT))]


def test_reimporting_the_same_file_changes_nothing(app, make):
    store = make.store(mall="rakuten")
    with app.app_context():
        import_file(store.id, "rakuten-normal-item.csv")
        before = snapshot()
        entries = db.session.scalar(select(func.count()).select_from(SyncEntry))
        job_id = upload(store.id, "rakuten-normal-item.csv")
        counts = db.session.get(ImportJob, job_id).preview["counts"]
        assert counts["new"] == 0 and counts["updated"] == 0 and counts["unchanged"] == 4
        assert counts["products_to_create"] == 0
        importer.run_job(job_id)
        assert snapshot() == before
        assert db.session.scalar(select(func.count()).select_from(SyncEntry)) == entries


def test_a_stock_only_file_with_reordered_columns_updates_the_mall_quantity(app, make):
    store = make.store(mall="rakuten")
    with app.app_context():
        import_file(store.id, "rakuten-normal-item.csv")
        job_id = upload(store.id, "rakuten-stock-only-utf8bom.csv")
        job = db.session.get(ImportJob, job_id)
        assert job.encoding == "UTF-8 (BOM)"
        assert job.preview["counts"]["updated"] == 1  # red 5 → 6; blue stays 0
        importer.run_job(job_id)
        red = listings_of(store.id)[("tshirt", "tshirt-red")]
        assert red.mall_quantity == 6
        # The product's central stock is the shop's, not the mall's: an import never overwrites it.
        assert red.product.on_hand == 5


def test_new_listings_of_an_auto_sync_store_are_scheduled_with_the_central_stock(app, make):
    make.product(code="TS-RED", on_hand=40, allocated=2)
    store = make.store(mall="rakuten", auto_sync=True, safety_stock=3)
    with app.app_context():
        import_file(store.id, "rakuten-normal-item.csv")
        red = listings_of(store.id)[("tshirt", "tshirt-red")]
        assert red.product.on_hand == 40  # linked to the existing product, its stock untouched
        entry = db.session.scalar(select(SyncEntry).where(SyncEntry.listing_id == red.id))
        assert entry is not None and entry.target_quantity == 35
        assert db.session.scalar(select(func.count()).select_from(SyncEntry)) == 4


def test_system_product_and_sell_codes_override_the_malls_codes(app, make):
    make.product(code="BASE-001", on_hand=11)
    store = make.store(mall="rakuten")
    with app.app_context():
        import_file(store.id, "rakuten-system-codes.csv")
        listings = listings_of(store.id)
        s1, s2 = listings[("set-a", "s1")], listings[("set-a", "s2")]
        assert (s1.code, s1.product.code, s1.product.on_hand) == ("SELL-A1", "BASE-001", 11)
        assert (s2.code, s2.product.code, s2.product.on_hand) == ("SELL-A2", "SELL-A2", 4)


def test_leaving_missing_products_unlinked(app, make):
    make.product(code="mug", on_hand=1)
    store = make.store(mall="rakuten")
    with app.app_context():
        job_id = upload(store.id, "rakuten-normal-item.csv", create_products=False)
        counts = db.session.get(ImportJob, job_id).preview["counts"]
        assert (counts["unlinked"], counts["linked_existing"], counts["products_to_create"]) == (3, 1, 0)
        importer.run_job(job_id)
        listings = listings_of(store.id)
        assert listings[("mug", "normal-inventory")].product.code == "mug"
        assert listings[("tshirt", "tshirt-red")].product_id is None
        assert product("TS-RED") is None
        # Importing again with creation on links the ones left over.
        import_file(store.id, "rakuten-normal-item.csv", create_products=True)
        assert listings_of(store.id)[("tshirt", "tshirt-red")].product.code == "TS-RED"


def test_trying_one_item_first_imports_only_that_item(app, make):
    store = make.store(mall="rakuten")
    with app.app_context():
        job_id = upload(store.id, "rakuten-normal-item.csv", items=["tshirt"])
        assert db.session.get(ImportJob, job_id).preview["counts"]["new"] == 2
        importer.run_job(job_id)
        assert set(listings_of(store.id)) == {("tshirt", "tshirt-red"), ("tshirt", "tshirt-blue")}
        import_file(store.id, "rakuten-normal-item.csv", first_items=1)
        assert len(listings_of(store.id)) == 2


def test_legacy_item_and_select_files_with_empty_child_numbers(app, make):
    store = make.store(mall="rakuten-ftp")
    with app.app_context():
        job = import_file(store.id, "dl-item.csv", "dl-select.csv")
        assert job.format == "rakuten-legacy"
        listings = listings_of(store.id)
        # The choice names tell SKUs apart; ' ' and '<br>' are placeholders; the leading space is trimmed.
        assert set(listings) == {("cap", "normal-inventory"), ("hoodie", "黒"), ("hoodie", "白"), ("hoodie", "グレー")}
        assert listings[("hoodie", "白")].mall_quantity == 4
        assert listings[("hoodie", "白")].title == "パーカー㈱ 白"
        assert listings[("hoodie", "白")].attributes["vertical"] == "<br>"
        assert listings[("cap", "normal-inventory")].product.on_hand == 9
        assert job.result["new"] == 4
        assert product("gone") is None  # the row marked d


def test_legacy_select_with_child_numbers_builds_the_sku_number(app, make):
    store = make.store(mall="rakuten-ftp")
    with app.app_context():
        import_file(store.id, "select.csv")
        listing = listings_of(store.id)[("polo", "-red-m")]
        assert listing.code == "polo-red-m" and listing.product.on_hand == 5


@pytest.mark.parametrize(
    "mall,files,expected",
    [
        ("yahoo", ["yahoo-data.csv"], {("shirt-01", "shirt-01-ws"): ("shirt-01-ws", None), ("key-01", ""): ("key-01", None)}),
        ("yahoo", ["yahoo-quantity.csv"], {("shirt-01", "shirt-01-wm"): ("shirt-01-wm", 4), ("key-01", ""): ("key-01", 10)}),
        ("amazon", ["amazon-listings-en.txt"], {("AMZ-MUG-1", ""): ("AMZ-MUG-1", 8), ("AMZ-CAP-FBA", ""): ("AMZ-CAP-FBA", None)}),
        ("amazon", ["amazon-listings-ja.txt"], {("AMZ-HK-1", ""): ("AMZ-HK-1", 15)}),
        ("shopify", ["shopify-products.csv"], {("puzzlly-ロゴtシャツ-M-白", ""): ("puzzlly-ロゴtシャツ-M-白", 6), ("TOTE-1", ""): ("TOTE-1", 2)}),
        ("shopify", ["shopify-inventory.csv"], {("puzzlly-ロゴtシャツ-S-白", ""): ("puzzlly-ロゴtシャツ-S-白", 3), ("TOTE-1", ""): ("TOTE-1", None)}),
        ("shopify", ["shopify-inventory-old.csv"], {("TOTE-1", ""): ("TOTE-1", 7)}),
        ("shopify", ["shopify-inventory-oldest.csv"], {("TOTE-1", ""): ("TOTE-1", 9)}),
    ],
)
def test_every_malls_file_is_recognised_and_read(app, make, mall, files, expected):
    store = make.store(mall=mall)
    with app.app_context():
        job = import_file(store.id, *files)
        assert job.status == "done", job.message
        listings = listings_of(store.id)
        for key, (code, quantity) in expected.items():
            assert (listings[key].code, listings[key].mall_quantity) == (code, quantity)


def test_amazon_fba_listings_are_imported_but_never_pushed(app, make):
    store = make.store(mall="amazon", auto_sync=True)
    with app.app_context():
        import_file(store.id, "amazon-listings-en.txt")
        fba = listings_of(store.id)[("AMZ-CAP-FBA", "")]
        assert fba.sync_enabled is False
        assert db.session.scalar(select(SyncEntry).where(SyncEntry.listing_id == fba.id)) is None


def test_shopify_products_then_inventory_update_the_same_listings(app, make):
    store = make.store(mall="shopify")
    with app.app_context():
        import_file(store.id, "shopify-products.csv")
        import_file(store.id, "shopify-inventory.csv")
        listings = listings_of(store.id)
        assert len(listings) == 3
        small = listings[("puzzlly-ロゴtシャツ-S-白", "")]
        assert small.mall_quantity == 3 and small.attributes["location"] == "本店倉庫"
        assert small.attributes["handle"] == "puzzlly-ロゴtシャツ" and small.attributes["options"] == "S / 白"
        assert small.title == "ロゴTシャツ① S / 白"


def test_shopify_location_setting_chooses_the_location(app, make):
    store = make.store(mall="shopify")
    with app.app_context():
        db.session.get(Store, store.id).settings = {"shopify_location": "ポップアップ"}
        db.session.commit()
        import_file(store.id, "shopify-inventory.csv")
        assert set(listings_of(store.id)) == {("puzzlly-ロゴtシャツ-S-白", "")}


def test_generic_csv_uses_the_stores_remembered_mapping(app, make):
    store = make.store(mall="rakuten")
    with app.app_context():
        job_id = upload(store.id, "generic.csv")
        assert db.session.get(ImportJob, job_id).status == "failed"  # not recognised yet
        db.session.get(Store, store.id).settings = {
            "generic_csv": {"item_code": "管理コード", "variant_code": "枝番", "title": "品名", "quantity": "在庫"}
        }
        db.session.commit()
        job = import_file(store.id, "generic.csv")
        assert job.format == "generic"
        assert listings_of(store.id)[("G-2", "B")].title == "汎用商品②"


def test_the_format_can_be_forced(app, make):
    # A control column makes this look like the legacy item.csv; the shop knows it is the SKU format.
    text = "コントロールカラム,商品管理番号（商品URL）,SKU管理番号,在庫数\r\nu,item-a,sku-1,3\r\n"
    store = make.store(mall="rakuten")
    with app.app_context():
        detected = db.session.get(ImportJob, upload(store.id, ("normal-item.csv", text.encode("cp932"))))
        assert detected.format == "rakuten-legacy"
        job = import_file(store.id, ("normal-item.csv", text.encode("cp932")), format="rakuten-item")
        assert job.format == "rakuten-item"
        assert listings_of(store.id)[("item-a", "sku-1")].mall_quantity == 3


def test_a_forced_format_names_the_missing_column(app, make):
    store = make.store(mall="rakuten")
    with app.app_context():
        job = db.session.get(ImportJob, upload(store.id, ("x.csv", b"code,quantity\r\na,1\r\n"), format="rakuten-legacy"))
        assert job.status == "failed"
        assert "商品管理番号（商品URL）" in job.message
        assert job.errors[0]["row"] == 1


def test_an_existing_link_is_kept_when_the_file_is_imported_again(app, make):
    store = make.store(mall="rakuten")
    other = make.product(code="HAND-LINKED")
    with app.app_context():
        import_file(store.id, "rakuten-normal-item.csv", create_products=False)
        listing = listings_of(store.id)[("tshirt", "tshirt-red")]
        listing.product_id = other.id
        db.session.commit()
        import_file(store.id, "rakuten-normal-item.csv")
        assert listings_of(store.id)[("tshirt", "tshirt-red")].product.code == "HAND-LINKED"


def test_crlf_lf_and_bare_cr_give_the_same_listings(app, make):
    text = "商品管理番号（商品URL）,商品名,SKU管理番号,在庫数\nitem-a,\"改行\nあり①\",,\nitem-a,,sku-1,3\n"
    results = []
    for newline in ("\r\n", "\n", "\r"):
        store = make.store(mall="rakuten")
        with app.app_context():
            import_file(store.id, ("normal-item.csv", text.replace("\n", newline).encode("cp932")))
            listing = listings_of(store.id)[("item-a", "sku-1")]
            results.append((listing.title.replace("\r\n", "\n").replace("\r", "\n"), listing.mall_quantity))
    assert results == [("改行\nあり①", 3)] * 3


def test_the_same_goods_on_every_mall_link_to_one_product(app, make, sandbox):
    """The sandbox malls' CSV downloads (over real HTTP): one catalogue with the same SKU codes on every mall
    (Rakuten and Yahoo lowercase their item codes), so every mall's listing of TT-0002-S links to one product."""
    imported = {}
    for mall, kind in (("rakuten", ""), ("yahoo", "quantity"), ("amazon", ""), ("shopify", ""), ("yahoo", "data")):
        remote = sandbox.create_store(mall, items=6)
        data = sandbox.listing_csv(remote["id"], kind)
        store = make.store(mall=mall)
        with app.app_context():
            job = import_file(store.id, (f"{mall}-{kind or 'listing'}.csv", data))
            assert job.status == "done", job.message
            imported[(mall, kind)] = listings_of(store.id)
    with app.app_context():
        sized = product("TT-0002-S")
        assert sized is not None and sized.name.startswith("今治タオル")
        for listings in imported.values():
            assert len([l for l in listings.values() if l.product_id == sized.id]) == 1
        # Only the first file (Rakuten) created products; the other malls linked to them.
        assert product("tt-0001") is None and product("TT-0001") is not None
        rakuten = imported[("rakuten", "")]
        assert rakuten[("tt-0002", "s")].code == "TT-0002-S"
        assert rakuten[("tt-0001", "normal-inventory")].product_id == product("TT-0001").id


def test_imported_listings_and_products_are_found_by_the_same_search_text_as_everywhere(app, make):
    from tatenpo.models import Product, search_key

    store = make.store(mall="rakuten")
    with app.app_context():
        import_file(store.id, "rakuten-normal-item.csv")
        for listing in listings_of(store.id).values():
            assert listing.search_text == search_key(listing.code, listing.item_code, listing.variant_code, listing.title)
        for item in db.session.scalars(select(Product)):
            assert item.search_text == search_key(item.code, item.name)
        assert "(株)髙島屋" in product("TS-RED").search_text  # ㈱ folded by NFKC, found by typing (株)


def test_uploads_left_unconfirmed_for_a_week_are_removed(app, make):
    from datetime import timedelta
    from pathlib import Path

    from tatenpo.models import utcnow

    store = make.store(mall="rakuten")
    with app.app_context():
        old_id = upload(store.id, "rakuten-normal-item.csv")
        old = db.session.get(ImportJob, old_id)
        folder = Path(old.stored_path).parent
        old.created_at = utcnow() - timedelta(days=8)
        db.session.commit()
        fresh_id = upload(store.id, "rakuten-normal-item.csv")  # any new upload tidies up
        assert not folder.exists()
        old = db.session.get(ImportJob, old_id)
        assert old.stored_path is None and old.status == "previewed"
        assert Path(db.session.get(ImportJob, fresh_id).stored_path).exists()
        with pytest.raises(importer.FileProblem):
            importer.run_job(old_id)
        assert "もう一度アップロード" in db.session.get(ImportJob, old_id).message


def test_listings_linked_on_a_later_import_are_scheduled(app, make):
    store = make.store(mall="rakuten", auto_sync=True)
    with app.app_context():
        import_file(store.id, "rakuten-normal-item.csv", create_products=False)
        assert db.session.scalar(select(func.count()).select_from(SyncEntry)) == 0  # unlinked: nothing to push
        job = import_file(store.id, "rakuten-normal-item.csv", create_products=True)
        assert job.result["updated"] == 4 and job.result["scheduled"] == 4
        red = listings_of(store.id)[("tshirt", "tshirt-red")]
        entry = db.session.scalar(select(SyncEntry).where(SyncEntry.listing_id == red.id))
        assert entry.target_quantity == 5 and entry.due_at is not None


def test_the_bulk_writes_belong_to_the_session_transaction_and_roll_back_with_it(app, make):
    """What makes a failed import change nothing: everything write() sent is undone by the rollback."""
    from tatenpo.listings.importer import analyse, write
    from tests.listing_helpers import FIXTURES

    store = make.store(mall="rakuten", auto_sync=True)
    with app.app_context():
        before = snapshot()
        target = db.session.get(Store, store.id)
        analysis = analyse(target, [(FIXTURES / "rakuten-normal-item.csv", "normal-item.csv")])
        write(target, analysis.plan, note="test", user_id=None)
        assert len(listings_of(store.id)) == 4  # visible inside the transaction
        db.session.rollback()
        assert snapshot() == before
        assert db.session.scalar(select(func.count()).select_from(SyncEntry)) == 0


def test_sku_rows_match_their_product_row_whatever_the_case_of_the_item_code(app, make):
    text = "商品管理番号（商品URL）,商品名,SKU管理番号,在庫数\r\nBAG-1,かばん①,,\r\nbag-1,,bag-1-red,2\r\n"
    store = make.store(mall="rakuten")
    with app.app_context():
        import_file(store.id, ("normal-item.csv", text.encode("cp932")))
        assert {k: l.title for k, l in listings_of(store.id).items()} == {("bag-1", "bag-1-red"): "かばん①"}


def test_shopify_products_export_in_todays_layout_reads_as_the_older_one(app, make, sandbox):
    """Shopify's current export names the columns URL handle, SKU, Option1 name / value and Inventory quantity;
    both layouts of the same shop give the same listings with the same quantities."""
    remote = sandbox.create_store("shopify", items=6)
    current = sandbox.listing_csv(remote["id"], "products-current")
    header = current.decode("utf-8").splitlines()[0].split(",")
    assert {"URL handle", "SKU", "Option1 name", "Option1 value", "Inventory quantity"} <= set(header)
    assert "Handle" not in header and "Variant SKU" not in header
    read = {}
    for kind, data in (("products-current", current), ("products", sandbox.listing_csv(remote["id"], "products"))):
        store = make.store(mall="shopify")
        with app.app_context():
            job = import_file(store.id, (f"products_export-{kind}.csv", data))
            assert job.status == "done", job.message
            read[kind] = {key: (l.code, l.title, l.mall_quantity, l.attributes.get("handle"))
                          for key, l in listings_of(store.id).items()}
    assert read["products-current"] == read["products"] and len(read["products"]) == 9
    assert read["products"][("TT-0002-M", "")][2] == sandbox.stock(remote["id"])[
        next((i["code"], i["variant"]) for i in sandbox.items(remote["id"]) if i["sku"] == "TT-0002-M")]


def test_a_weekly_reimport_writes_the_stock_alone_and_a_renamed_listing_whole(app, make):
    """Next week's file: new stock on every row (only mall_quantity and its time change, the rest stays as
    stored) and one renamed item (its title and search text follow)."""
    from tatenpo.models import Listing, search_key

    store = make.store(mall="rakuten", auto_sync=False)
    week = ("商品管理番号（商品URL）,商品番号,商品名,SKU管理番号,システム連携用SKU番号,バリエーション項目選択肢1,在庫数\r\n"
            "tshirt,TS-001,㈱髙島屋コラボ Tシャツ①,,,,\r\n"
            "tshirt,,,tshirt-red,TS-RED,赤,8\r\n"
            "tshirt,,,tshirt-blue,,青,2\r\n"
            'mug,MUG-1,"マグカップ, 特大",,,,3\r\n')
    with app.app_context():
        import_file(store.id, "rakuten-normal-item.csv")
        listings = listings_of(store.id)
        red, mug = listings[("tshirt", "tshirt-red")], listings[("mug", "normal-inventory")]
        before = {row.id: (row.search_text, row.title, row.code, row.product_id, row.attributes,
                           row.mall_quantity_at) for row in (red, mug)}
        job = import_file(store.id, ("normal-item.csv", week.encode("cp932")))
        assert job.status == "done", job.message
        assert (job.result["updated"], job.result["unchanged"]) == (3, 0)
        db.session.expire_all()
        red, mug = db.session.get(Listing, red.id), db.session.get(Listing, mug.id)
        assert red.mall_quantity == 8 and red.mall_quantity_at > before[red.id][5]
        assert (red.search_text, red.title, red.code, red.product_id, red.attributes) == before[red.id][:5]
        assert mug.title == "マグカップ, 特大" and mug.mall_quantity == 3
        assert mug.search_text == search_key(mug.code, mug.item_code, mug.variant_code, mug.title)
        assert "特大" in mug.search_text and mug.search_text != before[mug.id][0]
