"""導入ガイド: the eight steps per store, each done only when the real state says so, the current step
standing out, per-store progress, and the guide's advice and troubleshooting checks."""
from __future__ import annotations

import re

from tatenpo.models import ImportJob, Listing, StockChangeKind, StockHistory, Store
from tatenpo.platform.extensions import db
from tatenpo.setup import onboarding

HX = {"HX-Request": "true"}


def _done(page: str) -> list[int]:
    """Numbers of the steps the page marks done."""
    return [int(n) for n in re.findall(r'<li class="step done[^"]*" id="step-(\d)"', page)]


def _current(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="step[^"]* current" id="step-(\d)"', page)]


def test_a_new_install_lands_on_the_guide_with_step_one_current(client):
    response = client.post(
        "/setup", data={"email": "admin@example.jp", "password": "longenough", "confirm": "longenough"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert response.request.path == "/guide"
    assert "在庫同期の申請をします" in page and "ECサイトへ在庫が反映されている事を確認します" in page
    assert _done(page) == [] and _current(page) == [1]
    assert "ECサイトがまだ登録されていません" in page
    assert "0/8" in page or "8ステップ中 0 完了" in page


def test_steps_follow_the_real_state_one_by_one(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten", name="楽天店", auto_sync=False)
    page = client.get("/guide").get_data(as_text=True)
    assert _done(page) == [] and _current(page) == [1]
    assert "まず1〜数商品で試す" in page

    make.application(malls=["yahoo"], status="completed")  # another mall's application does not count
    make.application(malls=["rakuten"], status="pending")
    page = client.get("/guide").get_data(as_text=True)
    assert _done(page) == [] and "サポートセンターの対応待ち" in page
    make.application(malls=["rakuten"], status="completed")
    assert _done(client.get("/guide").get_data(as_text=True)) == [1]

    with app.app_context():
        row = db.session.get(Store, store.id)
        row.connection_ok = True
        from tatenpo.platform import credentials

        credentials.write(row, {"serviceSecret": "s", "licenseKey": "k"})
        db.session.commit()
    page = client.get("/guide").get_data(as_text=True)
    assert _done(page) == [1, 2] and _current(page) == [3]

    product = make.product(code="A-1", on_hand=5)
    listing = make.listing(store, product)
    with app.app_context():
        # The import's starting stock is not the shop entering a stock.
        db.session.add(StockHistory(product_id=product.id, product_code="A-1", change=5, quantity_after=5,
                                    kind=int(StockChangeKind.LISTING_IMPORT)))
        db.session.commit()
    assert _done(client.get("/guide").get_data(as_text=True)) == [1, 2, 3, 4]

    with app.app_context():
        db.session.get(Store, store.id).auto_sync = True
        db.session.commit()
    assert _done(client.get("/guide").get_data(as_text=True)) == [1, 2, 3, 4, 5]

    client.post(f"/products/{product.id}/stock", data={"on_hand": "7"})
    page = client.get("/guide").get_data(as_text=True)
    assert _done(page) == [1, 2, 3, 4, 5, 6] and _current(page) == [7]

    make.attempt(store, listing, ok=True, quantity=7)
    assert _done(client.get("/guide").get_data(as_text=True)) == [1, 2, 3, 4, 5, 6, 7]

    with app.app_context():
        db.session.get(Listing, listing.id).reflected = True
        db.session.commit()
    page = client.get("/guide").get_data(as_text=True)
    assert _done(page) == [1, 2, 3, 4, 5, 6, 7, 8] and _current(page) == []
    assert "8つのステップがすべて完了しました" in page


def test_each_store_has_its_own_progress(app, client, auth, make):
    auth.login()
    make.application(malls=["rakuten", "yahoo"], status="completed")
    first = make.store(mall="rakuten", name="楽天1号店", connection_ok=True)
    second = make.store(mall="yahoo", name="ヤフー店")
    make.listing(first, make.product())
    page = client.get(f"/guide?store={second.id}").get_data(as_text=True)
    assert "楽天1号店" in page and "ヤフー店" in page
    assert _done(page) == [1] and _current(page) == [2]
    assert "Yahoo!ショッピング: " in page  # the prerequisites of this store's mall
    first_page = client.get(f"/guide?store={first.id}").get_data(as_text=True)
    assert _done(first_page) == [1, 2, 3, 4]
    assert "4/8" in first_page and "1/8" in first_page


def test_an_import_file_alone_marks_the_data_prepared(app, make):
    store = make.store()
    with app.app_context():
        db.session.add(ImportJob(store_id=store.id, filename="normal-item.csv", kind="listings"))
        db.session.commit()
        steps = onboarding.progress(db.session.get(Store, store.id)).steps
        assert [s.done for s in steps[2:4]] == [True, False]


def test_troubleshooting_checks_name_what_went_wrong(app, client, auth, make):
    auth.login()
    store = make.store(mall="yahoo", name="ヤフー店", connection_ok=False, connection_message="アクセストークンが無効です")
    listing = make.listing(store, make.product())
    make.attempt(store, listing, ok=False, hint="login", message="ログインIDまたはパスワードが違います")
    page = client.get("/guide").get_data(as_text=True)
    assert "接続テストに失敗しました: アクセストークンが無効です" in page
    assert "ログインIDまたはパスワードが違います" in page
    checks = dict(re.findall(r'data-check="(\w+)" class="(\w+)"', page))
    assert checks == {"login": "ng", "item": "ok", "application": "ng"}
