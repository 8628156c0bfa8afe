"""セット商品CSV (tatenpo.stock.set_csv) in and out, from the shell and the web: one row per part, CP932 or
UTF-8, preview first, all or nothing; unknown codes, a set inside a set and a quantity ≤ 0 are refused with
their row. 在庫CSV refuses stock for a set."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from tatenpo.models import Product, SetPart, SyncEntry
from tatenpo.platform.extensions import db
from tatenpo.stock import sets

GOOD = "セット商品コード,構成商品コード,数量\r\nGIFT,MUG,1\r\nGIFT,TOWEL,2\r\nMUG-3,MUG,3\r\n"


@pytest.fixture
def catalog(app, make):
    store = make.store()
    for code, on_hand in (("MUG", 9), ("TOWEL", 5), ("PLATE", 4), ("GIFT", 0), ("MUG-3", 0), ("OLD-SET", 0)):
        make.product(code=code, on_hand=on_hand)
    with app.app_context():
        sets.define("OLD-SET", [("PLATE", 1)])
        db.session.commit()
        gift = db.session.scalar(select(Product).where(Product.code == "GIFT"))
        db.session.expunge(gift)
    return store, make.listing(store, gift)


def _parts(app) -> list[tuple[str, str, int]]:
    with app.app_context():
        part = Product.__table__.alias("part")
        return db.session.execute(
            select(Product.code, part.c.code, SetPart.quantity).join(SetPart, SetPart.set_id == Product.id)
            .join(part, part.c.id == SetPart.part_id).order_by(Product.code, SetPart.id)).all()


def test_import_from_the_shell_in_cp932_previews_then_saves_and_schedules(app, runner, catalog, tmp_path):
    _store, listing = catalog
    path = tmp_path / "sets.csv"
    path.write_bytes(GOOD.encode("cp932"))
    dry = runner.invoke(args=["sets", "import", str(path), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.output)
    assert data["counts"] == {"rows": 3, "sets": 2, "errors": 0, "new": 2, "changed": 0} and data["saved"] == 0
    assert _parts(app) == [("OLD-SET", "PLATE", 1)]  # a dry run writes nothing
    result = runner.invoke(args=["sets", "import", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["saved"] == 2
    assert _parts(app) == [("GIFT", "MUG", 1), ("GIFT", "TOWEL", 2), ("MUG-3", "MUG", 3), ("OLD-SET", "PLATE", 1)]
    with app.app_context():
        assert db.session.scalar(select(SyncEntry.target_quantity).where(SyncEntry.listing_id == listing.id)) == 2


@pytest.mark.parametrize("body, row", [
    ("GIFT,NOPE,1", 3),  # an unknown part
    ("NOPE,MUG,1", 3),  # an unknown set
    ("GIFT,OLD-SET,1", 3),  # a set inside a set
    ("MUG-3,GIFT,1", 3),  # a set of this file inside another
    ("GIFT,TOWEL,0", 3),  # quantity ≤ 0
    ("GIFT,TOWEL,-1", 3),
    ("GIFT,TOWEL,abc", 3),
    ("GIFT,MUG,2", 3),  # a part twice
    ("MUG,PLATE,1", 3),  # MUG has stock of its own (and is a part in this file)
])
def test_a_bad_row_refuses_the_whole_file_with_its_row(app, runner, catalog, tmp_path, body, row):
    path = tmp_path / "bad.csv"
    path.write_text("セット商品コード,構成商品コード,数量\nGIFT,MUG,1\n" + body + "\nMUG-3,MUG,3\n", encoding="utf-8")
    result = runner.invoke(args=["sets", "import", str(path), "--json"])
    assert result.exit_code != 0
    data = json.loads(result.output[: result.output.rindex("}") + 1])
    assert data["saved"] == 0 and row in [error["row"] for error in data["errors"]], data["errors"]
    assert _parts(app) == [("OLD-SET", "PLATE", 1)]


def test_export_writes_one_row_per_part_and_imports_back_unchanged(app, runner, catalog, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(GOOD, encoding="utf-8")
    assert runner.invoke(args=["sets", "import", str(source)]).exit_code == 0
    out = tmp_path / "out.csv"
    result = runner.invoke(args=["sets", "export", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_bytes().decode("cp932")
    assert text == ("セット商品コード,構成商品コード,数量\r\nGIFT,MUG,1\r\nGIFT,TOWEL,2\r\nMUG-3,MUG,3\r\n"
                    "OLD-SET,PLATE,1\r\n")
    again = json.loads(runner.invoke(args=["sets", "import", str(out), "--dry-run", "--json"]).output)
    assert again["counts"]["changed"] == 0 and again["counts"]["errors"] == 0


def test_the_web_page_previews_then_saves_all_or_nothing(app, client, auth, catalog):
    auth.login()
    assert "/imports/sets" in client.get("/imports/stock").get_data(as_text=True)  # beside 在庫CSV
    bad = client.post("/imports/sets", data={"file": (io.BytesIO((GOOD + "GIFT,NOPE,1\r\n").encode("cp932")),
                                                      "sets.csv")}, content_type="multipart/form-data")
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "NOPE" in page and 'name="data"' not in page  # nothing to confirm
    preview = client.post("/imports/sets", data={"file": (io.BytesIO(GOOD.encode("utf-8-sig")), "sets.csv")},
                          content_type="multipart/form-data")
    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert "GIFT" in page and "TOWEL ×2" in page
    assert _parts(app) == [("OLD-SET", "PLATE", 1)]  # a preview writes nothing
    data = page.split('name="data" value="')[1].split('"')[0]
    saved = client.post("/imports/sets/confirm", data={"data": data, "filename": "sets.csv"})
    assert saved.status_code == 302
    assert len(_parts(app)) == 4
    exported = client.get("/imports/sets/export?encoding=utf-8-sig")
    assert exported.get_data().decode("utf-8-sig").startswith("セット商品コード,構成商品コード,数量\r\nGIFT,MUG,1")


def test_the_stock_csv_refuses_a_sets_stock_with_its_row_and_skips_its_unchanged_row(app, runner, catalog, tmp_path):
    path = tmp_path / "stock.csv"
    path.write_text("商品コード,在庫数\nMUG,10\nOLD-SET,0\n", encoding="utf-8")
    result = runner.invoke(args=["stock", "import", str(path), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"]["unchanged"] == 1
    path.write_text("商品コード,在庫数\nMUG,10\nOLD-SET,5\n", encoding="utf-8")
    result = runner.invoke(args=["stock", "import", str(path), "--json"])
    assert result.exit_code != 0 and "OLD-SET" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.sum(Product.on_hand)).where(Product.code.in_(["MUG", "OLD-SET"]))) == 9
