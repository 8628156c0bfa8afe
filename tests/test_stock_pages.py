"""商品・在庫: search that ignores width and case, filters, paging, per-store badges, inline stock editing
(htmx edit-row) with errors inline, bulk edit all-or-nothing, and the product page."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import delete, event, func, select

from tatenpo.models import Product, StockChangeKind, StockHistory, SyncEntry
from tatenpo.platform.extensions import db

HX = {"HX-Request": "true"}


def _product(app, product_id) -> Product:
    with app.app_context():
        product = db.session.get(Product, product_id)
        db.session.expunge(product)
        return product


def _history_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(StockHistory))


def test_search_ignores_full_width_and_case(client, auth, make):
    make.product(code="ABC-001", name="りんごジュース")
    make.product(code="XYZ-9", name="みかん")
    auth.login()
    page = client.get("/products?q=ａｂｃ").get_data(as_text=True)
    assert "ABC-001" in page and "XYZ-9" not in page
    by_name = client.get("/products?q=ミカン").get_data(as_text=True)  # katakana is not hiragana: no match
    assert "XYZ-9" not in by_name
    assert "XYZ-9" in client.get("/products?q=みかん").get_data(as_text=True)
    # A % in the search is a character, not a wildcard.
    assert "該当する商品はありません" in client.get("/products?q=%25").get_data(as_text=True)


def test_pages_of_fifty_with_counts(client, auth, make):
    for i in range(120):
        make.product(code=f"P{i:04d}")
    auth.login()
    first = client.get("/products").get_data(as_text=True)
    assert "120件中 1–50件" in first and "P0049" in first and "P0050" not in first
    third = client.get("/products?page=3").get_data(as_text=True)
    assert "120件中 101–120件" in third and "P0119" in third and "P0099" not in third
    # Beyond the last page shows the last page, not an error.
    assert "P0119" in client.get("/products?page=99").get_data(as_text=True)


def test_filters_by_store_link_and_sync_state(client, auth, make):
    rakuten = make.store(mall="rakuten", name="楽天店")
    yahoo = make.store(mall="yahoo", name="ヤフー店")
    on_rakuten = make.product(code="R-1")
    on_yahoo = make.product(code="Y-1")
    make.product(code="ALONE-1")
    make.listing(rakuten, on_rakuten)
    listing = make.listing(yahoo, on_yahoo, reflected=False)
    auth.login()
    page = client.get(f"/products?store={rakuten.id}").get_data(as_text=True)
    assert "R-1" in page and "Y-1" not in page and "ALONE-1" not in page
    unlinked = client.get("/products?link=unlinked").get_data(as_text=True)
    assert "ALONE-1" in unlinked and "R-1" not in unlinked and "/imports/unlinked" in unlinked
    unreflected = client.get("/products?state=unreflected").get_data(as_text=True)
    assert "Y-1" in unreflected and "R-1" not in unreflected
    make.attempt(yahoo, listing, ok=False, quantity=3, message="ログインに失敗しました", hint="login")
    failed = client.get("/products?state=failed").get_data(as_text=True)
    assert "Y-1" in failed and "R-1" not in failed and "ログインに失敗しました" in failed



def test_a_search_alone_takes_its_count_from_the_index_and_with_filters_counts_itself(client, auth, make):
    rakuten = make.store(mall="rakuten", name="楽天店")
    for code in ("ABC-1", "ABC-2"):
        make.listing(rakuten, make.product(code=code))
    make.product(code="ABC-3")
    make.product(code="XYZ-1")
    auth.login()
    counts = []  # the page's own count statements (views.tables.paginate)

    def count_statements(conn, cursor, statement, parameters, context, executemany):
        counts.append(statement.startswith("SELECT count(*) AS count_1") and "FROM (SELECT 1" in statement)

    with client.application.app_context():
        event.listen(db.engine, "before_cursor_execute", count_statements)
        sqlite = db.engine.dialect.name == "sqlite"
    try:
        for address, shown, rows, counted_by_page in (
            ("/products?q=abc", "3件中 1–3件", ("ABC-1", "ABC-2", "ABC-3"), not sqlite),  # the index counted
            ("/products?q=ＡＢＣ-1", "1件中 1–1件", ("ABC-1",), not sqlite),
            ("/products?q=nothing", "0件中 0–0件", (), not sqlite),
            (f"/products?q=abc&store={rakuten.id}", "2件中 1–2件", ("ABC-1", "ABC-2"), True),
            ("/products?q=abc&link=unlinked", "1件中 1–1件", ("ABC-3",), True),
            ("/products?q=ab", "3件中 1–3件", ("ABC-1", "ABC-2", "ABC-3"), True),  # under three characters: no index
        ):
            counts.clear()
            page = client.get(address).get_data(as_text=True)
            assert shown in page, address
            assert [code for code in ("ABC-1", "ABC-2", "ABC-3", "XYZ-1") if f">{code}<" in page] == list(rows)
            assert any(counts) == counted_by_page, address
    finally:
        with client.application.app_context():
            event.remove(db.engine, "before_cursor_execute", count_statements)


def test_the_failed_filter_reads_the_listings_mark_not_the_history(client, auth, make):
    # The ✗ filter reads Listing.push_failed (a partial index), never the failed lines of the history: no
    # statement checks a failed line for a newer push. The store filter and a search narrow it.
    rakuten = make.store(mall="rakuten", name="楽天店")
    yahoo = make.store(mall="yahoo", name="ヤフー店")
    for code, store in (("F-1", rakuten), ("F-2", rakuten), ("F-3", yahoo), ("FIXED-1", rakuten), ("OK-1", rakuten)):
        listing = make.listing(store, make.product(code=code))
        if code != "OK-1":
            make.attempt(store, listing, ok=False, message=f"{code} に失敗")
        if code == "FIXED-1":
            make.attempt(store, listing, ok=True)  # failed once, pushed since: not ✗
    auth.login()
    walks = []  # statements that walk the failed pushes (a second alias of the history's table)

    def count_walks(conn, cursor, statement, parameters, context, executemany):
        walks.append("AS sync_attempts_2" in statement)

    with client.application.app_context():
        event.listen(db.engine, "before_cursor_execute", count_walks)
    try:
        page = client.get("/products?state=failed").get_data(as_text=True)
        _check_failed_pages(client, page, rakuten)
    finally:
        with client.application.app_context():
            event.remove(db.engine, "before_cursor_execute", count_walks)
    assert walks and not any(walks)


def _check_failed_pages(client, page, rakuten):
    assert all(code in page for code in ("F-1", "F-2", "F-3")) and "FIXED-1" not in page and "OK-1" not in page
    assert "F-1 に失敗" in page and "1–3" in page
    one_store = client.get(f"/products?state=failed&store={rakuten.id}").get_data(as_text=True)
    assert "F-1" in one_store and "F-2" in one_store and "F-3" not in one_store and "FIXED-1" not in one_store
    none = client.get("/products?state=failed&q=OK-1").get_data(as_text=True)
    assert "F-1" not in none and 'class="stock-row' not in none  # OK-1 has no ✗


def test_clicking_the_stock_opens_an_edit_row_and_saving_shows_waiting_to_sync(app, client, auth, make):
    store = make.store(name="楽天店", immediate_sync=True)
    product = make.product(code="A-1", on_hand=3)
    listing = make.listing(store, product)
    auth.login()
    edit = client.get(f"/products/{product.id}/stock/edit", headers=HX).get_data(as_text=True)
    assert edit.lstrip().startswith("<tr") and 'class="stock-input' in edit and 'value="3"' in edit
    assert "stock-cancel" in edit

    saved = client.post(f"/products/{product.id}/stock", data={"on_hand": "１，２００"}, headers=HX)
    row = saved.get_data(as_text=True)
    assert row.lstrip().startswith("<tr") and "1,200" in row
    assert "楽天店" in row and "同期待ち" in row
    assert 'hx-trigger="every 3s"' in row  # the row keeps asking until the push lands (within seconds here)
    with app.app_context():
        assert db.session.get(Product, product.id).on_hand == 1200
        history = db.session.scalar(select(StockHistory))
        assert history.kind == StockChangeKind.MANUAL and history.user.email == "staff@example.jp"
        assert history.change == 1197
        entry = db.session.scalar(select(SyncEntry))
        assert entry.target_quantity == 1200

    # The push lands: the schedule entry is closed and a ✓ attempt recorded (what the sync engine writes).
    make.attempt(store, listing, ok=True, quantity=1200)
    with app.app_context():
        db.session.execute(delete(SyncEntry))
        db.session.commit()
    polled = client.get(f"/products/{product.id}/row", headers=HX).get_data(as_text=True)
    assert "✓" in polled and "同期待ち" not in polled and "hx-trigger" not in polled


def test_plus_and_minus_adjust_the_stock(app, client, auth, make):
    product = make.product(on_hand=10)
    auth.login()
    client.post(f"/products/{product.id}/stock", data={"on_hand": "+5"}, headers=HX)
    client.post(f"/products/{product.id}/stock", data={"on_hand": "－３"}, headers=HX)
    assert _product(app, product.id).on_hand == 12


def test_bad_stock_shows_the_error_in_the_row_and_changes_nothing(app, client, auth, make):
    product = make.product(code="A-1", on_hand=4)
    auth.login()
    for typed, message in (("abc", "「abc」は整数ではありません"), ("-9", "在庫数をマイナスにはできません"), ("1.5", "整数ではありません"), ("", "数量を入力してください")):
        row = client.post(f"/products/{product.id}/stock", data={"on_hand": typed}, headers=HX).get_data(as_text=True)
        assert 'class="stock-input invalid"' in row and 'role="alert"' in row, typed
        assert message in row, (typed, row)
    assert _product(app, product.id).on_hand == 4
    assert _history_count(app) == 0


def test_without_javascript_the_form_posts_and_comes_back_with_a_message(app, client, auth, make):
    product = make.product(code="A-1", on_hand=4)
    auth.login()
    assert client.get(f"/products/{product.id}/stock/edit").status_code == 302
    done = client.post(f"/products/{product.id}/stock", data={"on_hand": "8", "next": "/products?q=a"}, follow_redirects=True)
    assert "A-1 の在庫数を保存しました。" in done.get_data(as_text=True)
    assert done.request.full_path == "/products?q=a"
    bad = client.post(f"/products/{product.id}/stock", data={"on_hand": "x", "next": "https://evil.example/"}, follow_redirects=True)
    assert bad.request.path == f"/products/{product.id}" and "整数ではありません" in bad.get_data(as_text=True)
    assert _product(app, product.id).on_hand == 8


def test_bulk_edit_sets_every_selected_row(app, client, auth, make):
    a, b, c = make.product(on_hand=1), make.product(on_hand=2), make.product(on_hand=3)
    auth.login()
    page = client.post("/products/bulk", data={"ids": [a.id, b.id], "mode": "set", "quantity": "20"}, follow_redirects=True)
    assert "2 商品の在庫数を変更しました。" in page.get_data(as_text=True)
    assert [_product(app, p.id).on_hand for p in (a, b, c)] == [20, 20, 3]
    client.post("/products/bulk", data={"ids": [a.id, c.id], "mode": "adjust", "quantity": "5"})
    assert [_product(app, p.id).on_hand for p in (a, b, c)] == [25, 20, 8]


def test_bulk_edit_is_all_or_nothing(app, client, auth, make):
    rich, poor = make.product(code="RICH", on_hand=50), make.product(code="POOR", on_hand=2)
    auth.login()
    before = _history_count(app)
    page = client.post("/products/bulk", data={"ids": [rich.id, poor.id], "mode": "adjust", "quantity": "-10"}, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "POOR" in text and "何も変更していません" in text
    assert _product(app, rich.id).on_hand == 50 and _product(app, poor.id).on_hand == 2
    assert _history_count(app) == before
    none = client.post("/products/bulk", data={"mode": "set", "quantity": "1"}, follow_redirects=True)
    assert "変更する商品を先に選択してください。" in none.get_data(as_text=True)


def test_product_page_shows_stock_listings_and_history_with_a_chart(app, client, auth, make):
    store = make.store(name="ヤフー店", mall="yahoo", safety_stock=2)
    product = make.product(code="A-1", on_hand=10, allocated=3)
    make.listing(store, product, code="a-1", last_pushed_quantity=5, mall_quantity=4, reflected=False)
    auth.login()
    client.post(f"/products/{product.id}/stock", data={"on_hand": "12", "note": "棚卸"})
    client.post(f"/products/{product.id}/stock", data={"on_hand": "-2"})
    page = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert "引当数" in page and "販売可能数" in page
    assert "ヤフー店" in page and "a-1" in page
    assert ">5<" in page and ">4<" in page  # last pushed and read back
    assert ">5</td>" in page  # to push: 10 sellable − 3 allocated... = 7 − 2 safety = 5
    assert "<svg" in page and "<polyline" in page
    assert "棚卸" in page and "+2" in page and "-2" in page and "手入力" in page
    assert client.get("/products/999999").status_code == 404


def test_the_history_names_every_kind_of_change_and_shows_allocation_moves(app, client, auth, make):
    product = make.product(code="A-1", on_hand=6, allocated=0)
    with app.app_context():
        # What an order's life writes (受注, 出荷, 再入庫) and a fall booked as a sale, oldest first.
        for kind, change, after, allocated in ((StockChangeKind.ORDER, 0, 10, 2), (StockChangeKind.SHIPMENT, -2, 8, -2),
                                               (StockChangeKind.RESTOCK, 1, 9, 0), (StockChangeKind.MALL_SALE, -3, 6, 0)):
            db.session.add(StockHistory(product_id=product.id, product_code="A-1", change=change, quantity_after=after,
                                        kind=int(kind), allocated_change=allocated))
        db.session.commit()
    auth.login()
    page = client.get(f"/products/{product.id}").get_data(as_text=True)
    for label in ("受注", "出荷", "再入庫", "説明のない減少を販売として計上"):
        assert f'<span class="badge">{label}</span>' in page, label
    assert "引当数 +2" in page and "引当数 -2" in page


def test_a_search_with_very_many_matches_stops_counting_but_still_pages(app, client, auth):
    from tatenpo.views.tables import COUNT_CAP

    with app.app_context():
        db.session.execute(
            Product.__table__.insert(),
            [{"code": f"M{i:05d}", "name": "マグ", "on_hand": 1, "allocated": 0, "stock_managed": True, "version": 0,
              "search_text": f"m{i:05d} マグ"} for i in range(COUNT_CAP + 60)],
        )
        db.session.commit()
    auth.login()
    first = client.get("/products?q=マグ").get_data(as_text=True)
    assert "1–50件目（2,000件以上）" in first and 'rel="next"' in first
    assert 'href="/products?q=%E3%83%9E%E3%82%B0&amp;page=2" rel="next"' in first  # the search kept in the links
    # Past the counted matches the pages go on: the last rows are still reachable.
    last = client.get("/products?q=マグ&page=42").get_data(as_text=True)
    assert "M02059" in last and 'rel="next"' not in last
    # Without a search the count stops at the cap too (a catalogue of 100,000 is not counted on every view),
    # and the pager still reaches the last products.
    unfiltered = client.get("/products").get_data(as_text=True)
    assert "1–50件目（2,000件以上）" in unfiltered and 'href="/products?page=2" rel="next"' in unfiltered
    last = client.get("/products?page=42").get_data(as_text=True)
    assert "2,051–2,060件目（2,000件以上）" in last and "M02059" in last and 'rel="next"' not in last
    assert 'href="/products?page=41" rel="prev"' in last


def test_a_catalogue_within_the_cap_is_counted_exactly(client, auth, make):
    for i in range(3):
        make.product(code=f"EXACT-{i}")
    auth.login()
    page = client.get("/products").get_data(as_text=True)
    assert "3件中 1–3件" in page and 'rel="next"' not in page


def test_typing_a_search_refreshes_only_the_table(client, auth, make):
    make.product(code="KEEP-1")
    make.product(code="OTHER-2")
    auth.login()
    text = client.get("/products?q=keep", headers={"HX-Request": "true", "HX-Target": "product-table"}).get_data(as_text=True)
    assert text.lstrip().startswith('<div id="product-table">') and "<html" not in text
    assert "KEEP-1" in text and "OTHER-2" not in text
    assert 'name="next" value="/products?q=keep"' in text  # bulk edit comes back to the filtered list


def test_what_the_shop_and_the_malls_wrote_is_shown_as_text_never_as_markup(app, client, auth, make):
    # Every row comes from the macros of templates/_rows.html: one `|safe` or Markup there lets one of these through.
    store = make.store(mall="rakuten", name='<b>"楽天"</b>')
    product = make.product(code="X&<1>", name="<script>alert('x')</script>")
    listing = make.listing(store, product, code='L"><img src=x>', title="<script>alert('t')</script>")
    make.attempt(store, listing, ok=False, message="'\"><svg onload=alert(1)>")
    auth.login()
    for url in ("/products", f"/products/{product.id}/row", "/listings", f"/products/{product.id}"):
        page = client.get(url, headers=HX if url.endswith("/row") else {}).get_data(as_text=True)
        for raw in ("<script>alert", "<b>\"楽天", "<img src=x>", "<svg onload", "X&<1>"):
            assert raw not in page, (url, raw)
        assert "&lt;script&gt;" in page, url
        assert "&lt;b&gt;" in page and "&lt;img src=x&gt;" in page and "&lt;svg onload=alert(1)&gt;" in page, url
    row = client.get(f"/products/{product.id}/row", headers=HX).get_data(as_text=True)
    assert 'id="product-%d"' % product.id in row and "X&amp;&lt;1&gt;" in row
    editing = client.get(f"/products/{product.id}/stock/edit", headers=HX).get_data(as_text=True)
    assert "<script>alert" not in editing and 'class="stock-row editing"' in editing and "<form" in editing
    assert "X&<1>" not in editing and "X&amp;&lt;1&gt;" in editing
    listing_editing = client.get(f"/listings/{listing.id}/stock/edit", headers=HX).get_data(as_text=True)
    assert 'class="listing-row editing"' in listing_editing
    for raw in ("<b>\"楽天", "<img src=x>", "<svg onload", "X&<1>"):
        assert raw not in listing_editing, raw


def test_every_import_of_the_row_macros_is_with_context():
    # templates/_rows.html switches autoescaping off in blocks; imported without context its module, and the
    # switch, would be shared by every thread of the server (see the template's header).
    import pathlib
    import re

    templates = pathlib.Path(__file__).resolve().parent.parent / "tatenpo" / "templates"
    imports = [(path.name, line) for path in templates.rglob("*.html") for line in path.read_text().splitlines()
               if re.search(r"""(from|import)\s+["']_rows\.html["']""", line)]
    assert imports
    for name, line in imports:
        assert re.search(r"""["']_rows\.html["']\s+import\s+[\w, ]+\s+with context""", line), (name, line)


def test_rows_drawn_by_many_threads_at_once_stay_whole_and_escaped(app):
    # The server draws rows in several threads at once (gunicorn --threads): no thread's autoescape switch may
    # reach another's rows (the product row, the badges, and an edit row, whose form is autoescaped).
    import re
    import sys
    import threading

    from flask import render_template

    from tatenpo.stock.table import ProductRow
    from tatenpo.sync.listing_state import BadgeListing, BadgeStore, ListingBadge
    from tatenpo.views.stock import StockEdit, row_labels

    store = BadgeStore(1, "<b>店</b>", True, False)
    listing = BadgeListing(7, 1, 3, "L<1>", True, True, None, None, store)
    row = ProductRow(3, "X&<1>", "<script>x</script>", 5, 0, True, False, 5,
                     [ListingBadge(listing, "failed", "<svg onload=1>")])
    edit = StockEdit(value="<i>", seen=5, next_url="/products", error="<u>bad</u>")
    drawn: dict[str, set] = {"row": set(), "edit": set()}
    errors = []

    def draw():
        try:
            with app.test_request_context("/products/3/row"):
                labels = row_labels()
                for _ in range(150):
                    drawn["row"].add(render_template("stock/_row.html", p=row, edit=None, labels=labels,
                                                     base="/products"))
                    editing = render_template("stock/_row.html", p=row, edit=edit, labels=labels, base="/products")
                    drawn["edit"].add(re.sub(r'name="csrf_token" value="[^"]+"', "TOKEN", editing))
        except Exception as exc:  # noqa: BLE001 - reported below with the thread's failure
            errors.append(repr(exc))

    threads = [threading.Thread(target=draw) for _ in range(6)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns every few bytecodes, as they would under load
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert not errors, errors[0]
    assert len(drawn["row"]) == 1 and len(drawn["edit"]) == 1  # every thread drew the same rows
    (page_row,), (edit_row,) = drawn["row"], drawn["edit"]
    for raw in ("X&<1>", "<script>", "<b>店", "L<1>", "<svg"):
        assert raw not in page_row and raw not in edit_row, raw
    assert "X&amp;&lt;1&gt;" in page_row and "&lt;svg onload=1&gt;" in page_row and "&lt;b&gt;店" in page_row
    assert "<u>" not in edit_row and "&lt;u&gt;bad&lt;/u&gt;" in edit_row and 'value="&lt;i&gt;"' in edit_row


def test_the_menu_follows_the_role_the_language_and_the_current_page(client, auth, make):
    # base.html's menu is worked out once per role and language (views.templating.menu_of): each must still get
    # its own, and the current page its aria-current.
    make.user(email="en@example.jp", role="staff", locale="en")
    client.post("/login", data={"email": "en@example.jp", "password": "correct horse battery"})
    english = client.get("/products").get_data(as_text=True)
    assert '<a href="/products" aria-current="page">Products & stock</a>' in english
    assert '<a href="/listings">Listings</a>' in english and 'href="/users"' not in english
    assert '<a href="/sync" aria-current="page">' in client.get("/sync").get_data(as_text=True)
    auth.logout()
    auth.login(email="owner@example.jp", role="admin")
    japanese = client.get("/products").get_data(as_text=True)
    assert '<a href="/products" aria-current="page">商品・在庫</a>' in japanese and 'href="/users"' in japanese
    assert "Products & stock" not in japanese


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"),
                    reason="PostgreSQL only (SQLite compiles no plan); .ci/run's PostgreSQL pass runs it")
def test_on_postgresql_the_app_never_jit_compiles_a_plan(app):
    # A filter that finds nothing in 100,000 listings ran 25 ms and spent 300–400 ms more compiling its plan.
    from sqlalchemy import text

    with app.app_context():
        assert db.session.execute(text("SHOW jit")).scalar() == "off"
        db.session.rollback()  # a rolled-back transaction does not take the setting with it
        assert db.session.execute(text("SHOW jit")).scalar() == "off"
