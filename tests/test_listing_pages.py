"""販売データ: search, filters, paging, the sync state of each listing, and step 6 of the guide — the stock of
the linked product edited in place from the listing's row."""
from __future__ import annotations

from sqlalchemy import select

from tatenpo.models import Product, StockHistory, SyncEntry
from tatenpo.platform.extensions import db

HX = {"HX-Request": "true"}


def test_search_filters_and_unlinked_link(client, auth, make):
    rakuten = make.store(name="楽天店")
    yahoo = make.store(mall="yahoo", name="ヤフー店")
    product = make.product(code="TSHIRT-RED-M")
    make.listing(rakuten, product, item_code="tshirt", variant_code="red-m", code="TSHIRT-RED-M", title="Ｔシャツ 赤 Ｍ")
    make.listing(yahoo, None, item_code="mug", code="MUG-1", title="マグカップ")
    auth.login()
    page = client.get("/listings?q=ｔｓｈｉｒｔ").get_data(as_text=True)
    assert "TSHIRT-RED-M" in page and "MUG-1" not in page
    by_store = client.get(f"/listings?store={yahoo.id}").get_data(as_text=True)
    assert "MUG-1" in by_store and "TSHIRT-RED-M" not in by_store
    unlinked = client.get("/listings?link=unlinked").get_data(as_text=True)
    assert "MUG-1" in unlinked and "未紐付け" in unlinked and 'href="/imports/unlinked"' in unlinked
    assert "TSHIRT-RED-M" not in unlinked
    linked = client.get("/listings?link=linked").get_data(as_text=True)
    assert "TSHIRT-RED-M" in linked and "MUG-1" not in linked


def test_pages_of_fifty(client, auth, make):
    store = make.store()
    for i in range(75):
        make.listing(store, None, item_code=f"item-{i:03d}", code=f"C{i:03d}")
    auth.login()
    assert "75件中 1–50件" in client.get("/listings").get_data(as_text=True)
    last = client.get("/listings?page=2").get_data(as_text=True)
    assert "75件中 51–75件" in last and "C074" in last and "C010" not in last


def test_editing_a_listings_stock_changes_the_linked_product_and_schedules_every_store(app, client, auth, make):
    rakuten = make.store(name="楽天店")
    yahoo = make.store(mall="yahoo", name="ヤフー店")
    product = make.product(code="A-1", on_hand=1)
    listing = make.listing(rakuten, product)
    make.listing(yahoo, product)
    auth.login()
    edit = client.get(f"/listings/{listing.id}/stock/edit", headers=HX).get_data(as_text=True)
    assert 'id="listing-%d"' % listing.id in edit and "stock-input" in edit
    row = client.post(f"/listings/{listing.id}/stock", data={"on_hand": "9"}, headers=HX).get_data(as_text=True)
    # Neither store pushes within seconds (no 即時同期): the row asks gently until the 5-minute push.
    assert "同期待ち" in row and 'hx-trigger="every 15s"' in row and ">9<" in row
    with app.app_context():
        assert db.session.get(Product, product.id).on_hand == 9
        assert sorted(e.target_quantity for e in db.session.scalars(select(SyncEntry))) == [9, 9]


def test_a_bad_stock_on_a_listing_row_is_shown_inline_and_nothing_changes(app, client, auth, make):
    store = make.store()
    product = make.product(on_hand=2)
    listing = make.listing(store, product)
    auth.login()
    row = client.post(f"/listings/{listing.id}/stock", data={"on_hand": "たくさん"}, headers=HX).get_data(as_text=True)
    assert "整数ではありません" in row and "stock-input invalid" in row
    with app.app_context():
        assert db.session.get(Product, product.id).on_hand == 2
        assert db.session.scalar(select(StockHistory)) is None


def test_unlinked_listing_has_no_stock_to_edit(client, auth, make):
    listing = make.listing(make.store(), None)
    auth.login()
    assert client.get(f"/listings/{listing.id}/stock/edit", headers=HX).status_code == 404
    assert client.post(f"/listings/{listing.id}/stock", data={"on_hand": "1"}).status_code == 404


def test_stopped_store_shows_not_synced(client, auth, make):
    store = make.store(name="停止店", auto_sync=False)
    listing = make.listing(store, make.product())
    auth.login()
    row = client.get(f"/listings/{listing.id}/row", headers=HX).get_data(as_text=True)
    assert "同期対象外" in row and "hx-trigger" not in row


def test_filters_refresh_only_the_table_when_asked_by_htmx(client, auth, make):
    store = make.store(name="楽天店")
    make.listing(store, make.product(code="KEEP-1"))
    make.listing(store, make.product(code="OTHER-2"))
    auth.login()
    partial = client.get("/listings?q=keep", headers={"HX-Request": "true", "HX-Target": "listing-table"})
    text = partial.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="listing-table">') and "<html" not in text
    assert "KEEP-1" in text and "OTHER-2" not in text
    assert "HX-Request" in partial.headers.get("Vary", "")
    full = client.get("/listings?q=keep").get_data(as_text=True)
    assert "<html" in full and 'hx-target="#listing-table"' in full
