"""Reading a CSV split byte for byte and decoding only the cells a reader names (Table.rows(columns=…)): the
same cells as decoding the whole file, whatever the encoding, the line endings and the quoting; undecodable
bytes in a named cell stop the import with their line, in a column Tatenpo does not read they do not; a
reader that uses a column it did not name fails loudly. And the upload's bytes: written to disk once by the
web request, and nothing left behind by an upload that is refused or cut short."""
from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tatenpo.listings import uploads
from tatenpo.listings.reading import FileProblem, UndeclaredColumn, open_table
from tatenpo.models import ImportJob, Listing
from tatenpo.platform import incoming_files
from tatenpo.platform.extensions import db

from .listing_helpers import fixture, import_file, listings_of, upload

HEADERS = ["商品管理番号（商品URL）", "商品番号", "商品名", "PC用商品説明文", "SKU管理番号", "システム連携用SKU番号",
           "バリエーション項目選択肢1", "在庫数"]
# CP932 characters whose second byte is 0x5C (a backslash in ASCII): ソ 表 能; the NEC and IBM extensions every
# mall's file holds: ① ㈱ 髙 ～; and ュ, whose second byte 0x85 is NEL in latin-1 (no line break in CSV).
TRICKY = "ソ表能①㈱髙～ュ"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def encoded(rows: list[list[str]], encoding: str, newline: str = "\r\n") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(rows)
    return out.getvalue().encode(encoding)


def both_ways(path: Path) -> tuple[list, list]:
    """Every row read decoded whole (rows()) and split byte for byte naming every column (rows(columns=…))."""
    table = open_table(path)
    width = len(table.headers)
    whole = [(number, row + [""] * (width - len(row))) for number, row in table.rows()]
    named = [(number, row[:width]) for number, row in table.rows(columns=list(range(width)))]
    return whole, named


def random_cell(rng: random.Random) -> str:
    pieces = [*TRICKY, "a", "Z", "1", " ", ",", '"', "\r\n", "\n", "\r", "\t", "<p>", "髙島屋", "ﾊﾝｶｸ"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))


@pytest.mark.parametrize("encoding", ["cp932", "utf-8", "utf-8-sig"])
@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_split_byte_for_byte_gives_the_cells_decoding_gives(app, tmp_path, encoding, newline):
    rng = random.Random(f"{encoding}{newline!r}")
    rows = [["見出し,1", '"引用"ソ', "表\r\n能"]] + [[random_cell(rng) for _ in range(3)] for _ in range(300)]
    path = write(tmp_path, "random.csv", encoded(rows, encoding, newline))
    with app.app_context():
        assert open_table(path).encoding == encoding
        whole, named = both_ways(path)
    assert named == whole
    assert len(whole) > 200  # the rows with no text at all are skipped both ways


@pytest.mark.parametrize("encoding", ["cp932", "utf-8", "utf-8-sig", "utf-16"])
def test_the_named_cells_are_decoded_and_numbered_as_in_excel(app, tmp_path, encoding):
    rows = [HEADERS,
            ["mug", "M-1", "マグ①㈱髙～", "<p>ソ表能,\r\n\"引用\"</p>", "", "", "", ""],
            ["mug", "", "", "", "mug-s", "SYS-ソ", "表,能\nュ", "3"]]
    path = write(tmp_path, "item.csv", encoded(rows, encoding))
    with app.app_context():
        table = open_table(path)
        wanted = [table.columns.at(name) for name in ("商品名", "SKU管理番号", "バリエーション項目選択肢1", "在庫数",
                                                      "カタログIDなしの理由")]
        read = list(table.rows(columns=wanted))
    assert [number for number, _ in read] == [2, 3]
    (_, product), (_, sku) = read
    assert product[2] == "マグ①㈱髙～" and sku[6] == "表,能\nュ" and sku[4] == "mug-s" and sku[7] == "3"
    assert product[len(HEADERS)] == "" == sku[len(HEADERS)]  # an absent column reads as the blank last cell


def test_ibm_extension_bytes_of_taka_and_a_bare_cr_file(app, tmp_path):
    data = "商品管理番号（商品URL）,商品名,SKU管理番号,在庫数\r".encode("cp932")
    data += b"item-a," + b"\xfb\xfc" + "島屋".encode("cp932") + b",sku-1,4\ritem-b,\x83\x5c,sku-2,5\r"
    path = write(tmp_path, "cr.csv", data)
    with app.app_context():
        table = open_table(path)
        read = list(table.rows(columns=[1, 3]))
    assert [(number, row[1], row[3]) for number, row in read] == [(2, "髙島屋", "4"), (3, "ソ", "5")]


def test_a_bom_before_a_quoted_header_splits_alike(app, tmp_path):
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + '"商品,名",在庫数\r\n"ソ,表",1\r\n'.encode())
    with app.app_context():
        assert open_table(path).headers == ["商品,名", "在庫数"]
        whole, named = both_ways(path)
    assert named == whole == [(2, ["ソ,表", "1"])]


def test_a_cell_the_reader_did_not_name_fails_loudly(app, tmp_path):
    rows = [HEADERS, ["mug", "M-1", "マグ", "<p>説明</p>", "", "", "", "1"]]
    path = write(tmp_path, "item.csv", encoded(rows, "cp932"))
    with app.app_context():
        table = open_table(path)
        [(_, row)] = list(table.rows(columns=[table.columns.at("商品名")]))
    assert row[2] == "マグ"
    description = row[3]
    uses = [lambda cell: cell.strip(), bool, str, len, lambda cell: cell == "", lambda cell: f"{cell}",
            lambda cell: "x" + cell, lambda cell: cell.lower(), lambda cell: {cell: 1}, lambda cell: "a" in cell]
    for use in uses:
        with pytest.raises(UndeclaredColumn, match="PC用商品説明文"):
            use(description)


def test_undecodable_bytes_in_a_named_cell_name_their_line(app, tmp_path):
    header = ",".join(HEADERS) + "\r\n"
    # Row 2 takes lines 2–3 (a newline in its description); row 3 is line 4; row 4's 商品名 breaks on line 6.
    data = (header + 'a,,ok,"一行目\r\n二行目",,,,1\r\n').encode("cp932")
    data += b"b,,\x81\x20bad,,,,,1\r\n"
    data += b'c,,"ok\r\n\x82\x20",,,,,1\r\n'
    path = write(tmp_path, "bad.csv", data)
    with app.app_context():
        table = open_table(path)
        rows = table.rows(columns=[table.columns.at("商品名")])
        assert next(rows)[0] == 2
        with pytest.raises(FileProblem) as bad:
            next(rows)
        assert bad.value.row == 4
        assert str(bad.value).startswith("4行目に Shift_JIS (CP932) として読めない文字があります")
        path.write_bytes(data.replace(b"\x81\x20bad", b"bad"))
        table = open_table(path)
        with pytest.raises(FileProblem) as bad:
            list(table.rows(columns=[table.columns.at("商品名")]))
        assert bad.value.row == 6


def test_undecodable_utf8_in_a_named_cell(app, tmp_path):
    path = write(tmp_path, "bad.csv", "商品名,在庫数\r\nよい,1\r\n".encode() + b"\xe3\x81,2\r\n")
    with app.app_context():
        table = open_table(path, encoding="utf-8")
        with pytest.raises(FileProblem) as bad:
            list(table.rows(columns=[0]))
        assert bad.value.row == 3 and "UTF-8 として読めない文字" in str(bad.value)


def test_undecodable_bytes_in_a_column_tatenpo_does_not_read_import_fine(app, make):
    store = make.store(mall="rakuten")
    header = ",".join(HEADERS) + "\r\n"
    data = (header + "mug,M-1,マグ①,").encode("cp932") + b'"\x81\x20broken \xfd description"' + b",,,,\r\n"
    data += "mug,,,,mug-s,,ソ,7\r\n".encode("cp932")
    with app.app_context():
        job = import_file(store.id, ("item.csv", data))
        assert job.status == "done", job.message
        [listing] = listings_of(store.id).values()
        assert (listing.variant_code, listing.title, listing.mall_quantity) == ("mug-s", "マグ① ソ", 7)


def test_undecodable_bytes_in_a_used_column_refuse_the_upload_with_the_line(app, make):
    store = make.store(mall="rakuten")
    header = ",".join(HEADERS) + "\r\n"
    data = (header + 'mug,M-1,マグ,"説明\r\n続き",,,,\r\n').encode("cp932") + b"mug,,,,mug-s,,\x81\x20,7\r\n"
    with app.app_context():
        job = db.session.get(ImportJob, upload(store.id, ("item.csv", data)))
        assert job.status == "failed"
        assert job.errors[0]["row"] == 4
        assert job.message.startswith("4行目に Shift_JIS (CP932) として読めない文字があります")
        assert db.session.scalar(select(Listing)) is None


# The upload request ---------------------------------------------------------------------------------------

def _post(client, store_id, *files, **fields):
    data = {"store_id": str(store_id), "files": [(io.BytesIO(body), name) for name, body in files], **fields}
    return client.post("/imports", data=data, content_type="multipart/form-data")


def _left_behind(app) -> list[Path]:
    incoming = Path(app.instance_path) / "uploads" / "incoming"
    return sorted(incoming.glob("*")) if incoming.exists() else []


def _folders(app) -> set[str]:
    root = Path(app.instance_path) / "uploads"
    return {path.name for path in root.iterdir() if path.name != "incoming"} if root.exists() else set()


def test_the_upload_is_written_once_where_it_is_kept(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    item, select_csv = fixture("dl-item.csv"), fixture("dl-select.csv")
    response = _post(client, store.id, ("item.csv", item), ("select.csv", select_csv))
    assert response.status_code == 302
    with app.app_context():
        job = db.session.scalar(select(ImportJob))
        stored = [Path(f["path"]) for f in job.options["files"]]
        assert [path.read_bytes() for path in stored] == [item, select_csv]
        assert [path.name for path in stored] == ["1.csv", "2.csv"]
        assert {stat.S_IMODE(path.stat().st_mode) for path in stored} == {0o600}  # the shop's data
        assert job.file_size == len(item) + len(select_csv)
        assert job.file_sha256 == hashlib.sha256(item + select_csv).hexdigest()
    assert _left_behind(app) == []


def test_a_refused_upload_leaves_no_file(app, client, auth, make):
    auth.login()
    make.store(mall="rakuten")
    folders = _folders(app)
    response = _post(client, 999, ("item.csv", fixture("rakuten-normal-item.csv")))  # no such store
    assert response.status_code == 400
    assert _left_behind(app) == []
    assert _folders(app) == folders


def test_an_upload_over_the_limit_leaves_no_file(app, client, auth, make):
    auth.login()
    store = make.store(mall="rakuten")
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = _post(client, store.id, ("big.csv", b"a,b\r\n" * 2000))
    assert response.status_code == 413 and "大きすぎ" in response.get_data(as_text=True)
    assert _left_behind(app) == []


def test_an_upload_cut_short_leaves_no_file(app, client, auth, make, monkeypatch):
    auth.login()
    store = make.store(mall="rakuten")
    # Held here, the half-written file is not closed by being dropped: the request itself must remove it.
    started = []
    monkeypatch.setattr(incoming_files, "incoming", lambda new=incoming_files.incoming: started.append(new()) or started[-1])
    body = (f'--XyZ\r\nContent-Disposition: form-data; name="store_id"\r\n\r\n{store.id}\r\n'
            '--XyZ\r\nContent-Disposition: form-data; name="files"; filename="item.csv"\r\n'
            'Content-Type: text/csv\r\n\r\n').encode() + fixture("rakuten-normal-item.csv")  # no closing boundary
    response = client.post("/imports", data=body, content_type="multipart/form-data; boundary=XyZ")
    assert response.status_code == 400
    assert len(started) == 1 and started[0].closed
    assert _left_behind(app) == []
    with app.app_context():
        assert db.session.scalar(select(ImportJob)) is None


def test_what_a_stopped_web_process_left_is_pruned(app):
    with app.app_context():
        stale, fresh = incoming_files.incoming(), incoming_files.incoming()
        stale.write(b"half an upload")
        stale.flush()
        old = time.time() - 2 * 24 * 3600
        os.utime(stale.path, (old, old))
        uploads.prune()
        assert not stale.path.exists() and fresh.path.exists()
        fresh.close()
        assert not fresh.path.exists()
