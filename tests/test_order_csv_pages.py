"""受注取込 from the screens and the shell (`flask orders import`), and the Shopify webhook switch on the store
settings page: real database, Japanese messages, refusals by row, nothing changed by a preview or a bad file."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from tatenpo.models import ImportJob, Order, OrderStatus, Product, Store
from tatenpo.platform.extensions import db

from .listing_helpers import run_worker

HEAD = "注文番号,ステータス,注文日時,商品名,商品番号,商品管理番号,単価,個数,項目・選択肢\r\n"
GOOD = (HEAD + "300001-20261130-0000000001,発送待ち,2026-11-30 10:00:00,緑茶,KG-1,tea-1,1980,2,\r\n"
        + "300001-20261130-0000000002,発送済,2026-11-30 11:00:00,緑茶,KG-1,tea-1,1980,1,\r\n").encode("cp932")
BAD = (HEAD + "300001-20261130-0000000001,発送待ち,2026-11-30 10:00:00,緑茶,KG-1,tea-1,1980,0,\r\n").encode("cp932")


@pytest.fixture
def shop(app, make):
    store = make.store("rakuten", name="楽天テスト店")
    tea = make.product(code="TEA-1", on_hand=10)
    make.listing(store, tea, item_code="tea-1")
    return type("Shop", (), dict(store=store, tea=tea))


def stock(app, product_id):
    with app.app_context():
        product = db.session.get(Product, product_id)
        return product.on_hand, product.allocated


def order_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Order))


def upload(client, store_id, data: bytes, name="orders.csv"):
    return client.post("/orders/import", data={"store_id": str(store_id), "files": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_upload_preview_confirm(app, client, auth, shop):
    auth.login(role="staff")
    page = client.get("/orders")
    assert "/orders/import" in page.text  # linked from the 受注 page
    response = upload(client, shop.store.id, GOOD)
    assert response.status_code == 302
    waiting = client.get(response.headers["Location"])
    assert "order-import-progress" in waiting.text  # read in the background: the page polls
    progress_url = response.headers["Location"] + "/progress"
    assert client.get(progress_url).headers.get("HX-Refresh") is None
    run_worker(app)
    assert client.get(progress_url).headers.get("HX-Refresh") == "true"  # done: the page reloads
    job_page = client.get(response.headers["Location"])
    assert "受注取込" in job_page.text and "300001-20261130-0000000002" in job_page.text
    assert order_count(app) == 0 and stock(app, shop.tea.id) == (10, 0)  # the preview changed nothing
    with app.app_context():
        job = db.session.scalar(select(ImportJob).where(ImportJob.kind == "orders"))
        assert job.status == "previewed" and job.preview["counts"]["new"] == 2
    queued = client.post(f"/orders/import/{job.id}/confirm", follow_redirects=True)
    assert queued.status_code == 200 and order_count(app) == 0
    run_worker(app)
    done = client.get(f"/orders/import/{job.id}")
    assert "2件の受注を取り込みました" in done.text
    assert order_count(app) == 2 and stock(app, shop.tea.id) == (9, 2)
    again = client.post(f"/orders/import/{job.id}/confirm", follow_redirects=True)  # a second click moves nothing
    run_worker(app)
    assert stock(app, shop.tea.id) == (9, 2) and "取り込めません" in again.text


def test_bad_rows_are_shown_in_japanese_and_cannot_be_confirmed(app, client, auth, shop):
    auth.login(role="staff")
    response = upload(client, shop.store.id, BAD)
    run_worker(app)
    page = client.get(response.headers["Location"])
    assert "個数" in page.text and "1以上の整数ではありません" in page.text
    with app.app_context():
        job = db.session.scalar(select(ImportJob).where(ImportJob.kind == "orders"))
        assert job.status == "failed" and job.errors[0]["row"] == 2
    client.post(f"/orders/import/{job.id}/confirm")
    run_worker(app)
    assert order_count(app) == 0


def test_a_file_that_is_not_an_order_csv(app, client, auth, shop):
    auth.login(role="staff")
    response = upload(client, shop.store.id, "商品コード,在庫数\r\nA,1\r\n".encode("cp932"))
    run_worker(app)
    page = client.get(response.headers["Location"])
    assert "受注ファイルではありません" in page.text
    assert upload(client, shop.store.id, b"", name="").status_code == 400


def test_cli_dry_run_then_import_then_again(app, runner, shop, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(GOOD)
    dry = runner.invoke(args=["orders", "import", str(path), "--store", str(shop.store.id), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.output)
    assert data["dry_run"] and data["counts"]["new"] == 2 and not data["applied"]
    assert order_count(app) == 0
    done = runner.invoke(args=["orders", "import", str(path), "--store", str(shop.store.id)])
    assert done.exit_code == 0, done.output
    assert stock(app, shop.tea.id) == (9, 2)
    with app.app_context():
        statuses = sorted(o.status for o in db.session.scalars(select(Order)))
    assert statuses == [OrderStatus.RECEIVED.value, OrderStatus.SHIPPED.value]
    again = runner.invoke(args=["orders", "import", str(path), "--store", str(shop.store.id), "--json"])
    assert json.loads(again.output)["counts"]["unchanged"] == 2 and stock(app, shop.tea.id) == (9, 2)


def test_cli_refusals(app, runner, shop, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(BAD)
    result = runner.invoke(args=["orders", "import", str(path), "--store", str(shop.store.id)])
    assert result.exit_code == 1 and "row 2" in result.output
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = runner.invoke(args=["orders", "import", str(empty), "--store", str(shop.store.id)])
    assert result.exit_code != 0 and ("empty" in result.output.lower() or "空" in result.output)
    result = runner.invoke(args=["orders", "import", str(path), "--store", "999"])
    assert result.exit_code != 0 and "no store 999" in result.output
    assert order_count(app) == 0


# The webhook switch on 設定 › ECサイト -------------------------------------------------------------------------

def test_webhook_switch_needs_the_secret_and_registers(app, client, auth, make, sandbox):
    import requests

    auth.login(role="admin")
    remote = sandbox.create_store("shopify", items=1)
    without = make.store("shopify", endpoint=remote["endpoint"],
                         secrets={k: v for k, v in remote["credentials"].items() if k != "client_secret"})
    page = client.post(f"/settings/stores/{without.id}/webhooks", data={"action": "on"}, follow_redirects=True)
    assert "API secret key" in page.text or "シークレット" in page.text
    with app.app_context():
        assert not db.session.get(Store, without.id).webhooks_on

    store = make.store("shopify", endpoint=remote["endpoint"], secrets=remote["credentials"])
    page = client.post(f"/settings/stores/{store.id}/webhooks", data={"action": "on"}, follow_redirects=True)
    assert page.status_code == 200
    with app.app_context():
        kept = db.session.get(Store, store.id)
        assert kept.webhooks_on and kept.webhook_token
        token = kept.webhook_token
    assert f"/webhooks/shopify/{token}" in page.text
    hooks = requests.get(f"{sandbox.url}/_sandbox/stores/{remote['id']}/webhooks", timeout=10).json()
    assert {s["uri"] for s in hooks["subscriptions"]} == {f"http://localhost/webhooks/shopify/{token}"}
    client.post(f"/settings/stores/{store.id}/webhooks", data={"action": "off"})
    with app.app_context():
        assert not db.session.get(Store, store.id).webhooks_on
    # The store settings are the administrator's.
    auth.logout()
    auth.login(email="staff2@example.jp", role="staff")
    assert client.post(f"/settings/stores/{store.id}/webhooks", data={"action": "on"}).status_code == 403
