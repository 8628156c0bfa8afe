"""受注取込: each mall's order CSV as the sandbox mall offers it for download, imported through the real database —
statuses applied once, importing again moves nothing, a CSV after the mail is one order, CP932 read, and bad
files refused with the row named and nothing changed."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import func, select

from tatenpo.listings.reading import FileProblem
from tatenpo.models import Order, OrderStatus, Product, StockChangeKind, StockHistory, Store
from tatenpo.orders import intake, reading
from tatenpo.orders.order_csv import importer
from tatenpo.platform.extensions import db


class Pair:
    """A sandbox store and the Tatenpo store selling the same items, each item linked to its own product."""

    def __init__(self, app, make, sandbox, mall: str, items: int = 3, **store_fields) -> None:
        self.app, self.sandbox = app, sandbox
        self.remote = sandbox.create_store(mall, items=items)
        self.items = sandbox.items(self.remote["id"])
        sandbox.set_stock(self.remote["id"], [{"code": i["code"], "variant": i["variant"], "quantity": 100}
                                              for i in self.items])  # enough to buy, whatever the catalog gave
        self.store = make.store(mall, **store_fields)
        self.products = []
        for n, item in enumerate(self.items):
            product = make.product(code=f"{mall.upper()}-{self.remote['id']}-{n}", on_hand=50)
            attributes = {"sku": item["sku"]} if mall == "shopify" else {}
            make.listing(self.store, product, item_code=item["code"], variant_code=item["variant"],
                         attributes=attributes)
            self.products.append(product)

    def buy(self, n: int, quantity: int) -> str:
        item = self.items[n]
        response = requests.post(f"{self.sandbox.url}/_sandbox/stores/{self.remote['id']}/orders",
                                 json={"items": [{"code": item["code"], "variant": item["variant"],
                                                  "quantity": quantity}]}, timeout=10)
        response.raise_for_status()
        return response.json()["order_number"]

    def change(self, number: str, action: str) -> None:
        requests.post(f"{self.sandbox.url}/_sandbox/stores/{self.remote['id']}/orders/{quote(number, safe='')}/{action}",
                      timeout=10).raise_for_status()

    def download(self, folder: Path, file: str = "") -> Path:
        response = requests.get(f"{self.sandbox.url}/_sandbox/stores/{self.remote['id']}/orders.csv",
                                params={"file": file} if file else {}, timeout=10)
        response.raise_for_status()
        name = response.headers["Content-Disposition"].split("filename=")[1]
        path = folder / name
        path.write_bytes(response.content)
        return path

    def stock(self, n: int) -> tuple[int, int]:
        with self.app.app_context():
            product = db.session.get(Product, self.products[n].id)
            return product.on_hand, product.allocated

    def run(self, paths: list[Path], commit: bool = True) -> importer.Outcome:
        with self.app.app_context():
            store = db.session.get(Store, self.store.id)
            return importer.run(store, [(p, p.name) for p in paths], commit=commit)


def history_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(StockHistory))


def orders_of(app, store_id) -> dict[str, Order]:
    with app.app_context():
        found = {o.number: o for o in db.session.scalars(select(Order).where(Order.store_id == store_id))}
        for order in found.values():
            db.session.expunge(order)
        return found


@pytest.mark.parametrize("mall, file", [("rakuten", ""), ("rakuten-ftp", ""), ("yahoo", ""), ("amazon", "all-orders"),
                                        ("shopify", "")])
def test_each_mall_file_applies_each_status_once(app, make, sandbox, tmp_path, mall, file):
    pair = Pair(app, make, sandbox, mall)
    received, shipped, cancelled = pair.buy(0, 2), pair.buy(1, 3), pair.buy(2, 1)
    pair.change(shipped, "ship")
    pair.change(cancelled, "cancel")
    path = pair.download(tmp_path, file)

    preview = pair.run([path], commit=False)
    assert not preview.refused, preview.problems
    assert preview.counts["new"] == 3 and not preview.applied
    assert preview.encoding == ("UTF-8" if mall == "shopify" else "Shift_JIS (CP932)")  # as each mall writes it
    assert orders_of(app, pair.store.id) == {}  # the preview changed nothing
    assert history_count(app) == 0

    outcome = pair.run([path])
    assert outcome.applied and outcome.counts["new"] == 3
    orders = orders_of(app, pair.store.id)
    assert orders[received].status == OrderStatus.RECEIVED.value and orders[received].sources == ["csv"]
    assert orders[shipped].status == OrderStatus.SHIPPED.value
    # The mall's own status, in the words the order API door shows (tatenpo.malls.<mall>_orders).
    assert orders[shipped].mall_status == {"rakuten": "500 発送済", "rakuten-ftp": "500 発送済", "yahoo": "5 完了 / 出荷完了",
                                           "amazon": "Shipped", "shopify": "FULFILLED"}[mall]
    assert orders[cancelled].status == OrderStatus.CANCELLED.value
    assert pair.stock(0) == (50, 2)  # allocated
    assert pair.stock(1) == (47, 0)  # shipped
    assert pair.stock(2) == (50, 0)  # released
    moved = history_count(app)

    again = pair.run([path])  # the same file again: nothing moves
    assert again.counts["unchanged"] == 3
    assert history_count(app) == moved
    assert pair.stock(0) == (50, 2) and pair.stock(1) == (47, 0)


def test_a_later_file_applies_the_changes_once(app, make, sandbox, tmp_path):
    pair = Pair(app, make, sandbox, "shopify", items=2)
    first, second = pair.buy(0, 2), pair.buy(1, 1)
    pair.run([pair.download(tmp_path)])
    assert pair.stock(0) == (50, 2) and pair.stock(1) == (50, 1)
    pair.change(first, "ship")
    pair.change(second, "cancel")
    later = tmp_path / "later"
    later.mkdir()
    outcome = pair.run([pair.download(later)])
    assert outcome.counts["shipped"] == 1 and outcome.counts["cancelled"] == 1
    assert pair.stock(0) == (48, 0) and pair.stock(1) == (50, 0)
    outcome = pair.run([pair.download(later)])
    assert outcome.counts["unchanged"] == 2 and pair.stock(0) == (48, 0)


def test_yahoo_two_files_or_zip_and_not_one_alone(app, make, sandbox, tmp_path):
    pair = Pair(app, make, sandbox, "yahoo", items=2)
    number = pair.buy(0, 2)
    orders_file, items_file = pair.download(tmp_path, "orders"), pair.download(tmp_path, "items")
    assert orders_file.read_bytes().decode("cp932").startswith("OrderId,")
    for one in (items_file, orders_file):
        alone = pair.run([one], commit=False)
        assert alone.refused and "two order files" in str(alone.problems[0].message)
    outcome = pair.run([orders_file, items_file])
    assert outcome.counts["new"] == 1 and pair.stock(0) == (50, 2)
    zipped = pair.download(tmp_path)
    assert zipfile.is_zipfile(zipped)
    assert pair.run([zipped]).counts["unchanged"] == 1
    assert number in orders_of(app, pair.store.id)


def test_amazon_order_report_and_fba(app, make, sandbox, tmp_path):
    pair = Pair(app, make, sandbox, "amazon", items=2)
    pair.buy(0, 2)
    item = pair.items[1]
    fba = requests.post(f"{sandbox.url}/_sandbox/stores/{pair.remote['id']}/orders", timeout=10,
                        json={"items": [{"code": item["code"], "variant": item["variant"], "quantity": 1}], "fba": True})
    fba.raise_for_status()
    report = pair.download(tmp_path, "orders")  # the orders the seller ships: not the FBA one
    assert report.read_bytes().split(b"\n")[0].startswith(b"order-id\torder-item-id\tpurchase-date")
    outcome = pair.run([report])
    assert outcome.counts["new"] == 1 and pair.stock(0) == (50, 2)
    everything = pair.run([pair.download(tmp_path, "all-orders")])
    assert everything.counts["new"] == 1  # the FBA order: kept, shown …
    orders = orders_of(app, pair.store.id)
    assert not orders[fba.json()["order_number"]].moves_stock
    assert pair.stock(1) == (50, 0)  # … and never allocating the shop's stock


def test_csv_after_the_mail_is_one_order(app, make, sandbox, tmp_path):
    address = "order-77-csv@orders.tatenpo.local"
    pair = Pair(app, make, sandbox, "rakuten", items=2, order_mail_address=address)
    requests.post(f"{sandbox.url}/_sandbox/stores/{pair.remote['id']}", json={"order_mail": address},
                  timeout=10).raise_for_status()
    number = pair.buy(0, 2)
    mail_id = requests.get(f"{sandbox.url}/_sandbox/stores/{pair.remote['id']}/outbox", timeout=10).json()["mails"][0]["id"]
    raw = requests.get(f"{sandbox.url}/_sandbox/stores/{pair.remote['id']}/outbox/{mail_id}.eml", timeout=10).content
    with app.app_context():
        mail = intake.receive(raw, db.session.get(Store, pair.store.id), recipient=address, via="shell")
        assert reading.read(mail.id).status == "order"
    assert pair.stock(0) == (50, 2)
    pair.change(number, "ship")
    outcome = pair.run([pair.download(tmp_path)])
    assert outcome.counts["shipped"] == 1
    orders = orders_of(app, pair.store.id)
    assert list(orders) == [number] and orders[number].sources == ["mail", "csv"]
    assert pair.stock(0) == (48, 0)
    with app.app_context():
        kinds = [h.kind for h in db.session.scalars(select(StockHistory).order_by(StockHistory.id))]
    assert kinds == [StockChangeKind.ORDER.value, StockChangeKind.SHIPMENT.value]


# Files written by hand: CP932, refusals ---------------------------------------------------------------------

RAKUTEN_HEAD = "注文番号,ステータス,注文日時,商品名,商品番号,商品管理番号,単価,個数,項目・選択肢,SKU管理番号\r\n"


@pytest.fixture
def rakuten_store(app, make):
    store = make.store("rakuten")
    product = make.product(code="TEA-1", on_hand=10)
    make.listing(store, product, item_code="tea-1", variant_code="normal-inventory")
    return type("Shop", (), dict(store=store, product=product))


def _run(app, store, *paths: Path, commit=True):
    with app.app_context():
        return importer.run(db.session.get(Store, store.id), [(p, p.name) for p in paths], commit=commit)


def test_cp932_file_with_machine_dependent_characters(app, rakuten_store, tmp_path):
    path = tmp_path / "orders.csv"
    body = (RAKUTEN_HEAD + '300001-20261130-0000000001,発送待ち,2026-11-30 10:00:00,"髙級 緑茶 ①番摘み ～限定～",'
            'KG-1,tea-1,"1,980",2,"容量:100g\nパッケージ:缶",\r\n')
    path.write_bytes(body.encode("cp932"))
    outcome = _run(app, rakuten_store.store, path)
    assert outcome.encoding == "Shift_JIS (CP932)" and outcome.counts["new"] == 1
    with app.app_context():
        line = db.session.scalar(select(Order)).lines[0]
        assert line.title == "髙級 緑茶 ①番摘み ～限定～" and line.choices == "容量:100g / パッケージ:缶"
        assert line.unit_price == 1980 and line.quantity == 2


def test_utf8_bom_file(app, rakuten_store, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(("\ufeff" + RAKUTEN_HEAD + "300001-20261130-0000000002,キャンセル確定,2026-11-30 10:00:00,緑茶,KG-1,"
                      "tea-1,1980,1,,\r\n").encode("utf-8"))
    outcome = _run(app, rakuten_store.store, path)
    assert outcome.counts["new"] == 1
    with app.app_context():
        assert db.session.scalar(select(Order)).status == OrderStatus.CANCELLED.value
        assert db.session.get(Product, rakuten_store.product.id).allocated == 0


def test_bad_rows_are_named_and_nothing_changes(app, rakuten_store, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes((RAKUTEN_HEAD
                      + "300001-20261130-0000000003,発送待ち,2026-11-30 10:00:00,緑茶,KG-1,tea-1,1980,2,,\r\n"
                      + "300001-20261130-0000000004,発送待ち,2026-11-30 10:00:00,緑茶,KG-1,tea-1,1980,二,,\r\n"
                      + ",発送待ち,2026-11-30 10:00:00,緑茶,KG-1,tea-1,1980,1,,\r\n").encode("cp932"))
    outcome = _run(app, rakuten_store.store, path)
    assert outcome.refused and not outcome.applied
    assert [(p.row, p.column) for p in outcome.problems] == [(3, "個数"), (4, "注文番号")]
    assert "二" in str(outcome.problems[0].message)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert history_count(app) == 0


@pytest.mark.parametrize("content, expected", [
    (b"", "empty"),
    (b"PK\x03\x04junk", "zip"),
    (b"\xd0\xcf\x11\xe0rest", "Excel"),
    ("商品コード,在庫数\r\nA,1\r\n".encode("cp932"), "not an order file"),
])
def test_files_that_are_not_order_csvs_are_refused(app, rakuten_store, tmp_path, content, expected):
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(FileProblem) as refused:
        _run(app, rakuten_store.store, path)
    assert expected.lower() in str(refused.value).lower()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_another_malls_file_is_refused(app, make, tmp_path):
    store = make.store("yahoo")
    path = tmp_path / "orders.csv"
    path.write_bytes((RAKUTEN_HEAD + "300001-20261130-0000000005,発送待ち,,緑茶,KG-1,tea-1,1980,1,,\r\n").encode("cp932"))
    with pytest.raises(FileProblem) as refused:
        _run(app, store, path)
    assert "楽天" in str(refused.value)


def test_undecodable_line_is_named(app, rakuten_store, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(RAKUTEN_HEAD.encode("cp932") + b"300001-20261130-0000000006,\x82\xff\x81,x,y,z,tea-1,1,1,,\r\n")
    with pytest.raises(FileProblem) as refused:
        _run(app, rakuten_store.store, path)
    assert refused.value.row == 2


def test_zip_without_csv_is_refused(app, rakuten_store, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.pdf", b"%PDF")
    path = tmp_path / "orders.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(FileProblem) as refused:
        _run(app, rakuten_store.store, path)
    assert "no CSV" in str(refused.value)
