"""The Rakuten FTP route: CSV upload to /ritem/batch, the sandbox's asynchronous processing and the CP932
result log in /ritem/logs, over real FTP on 127.0.0.1."""
from __future__ import annotations

import ftplib
import io
import json
import re
import time

import pytest

from tatenpo.malls import connector_for
from tatenpo.malls.base import HINT_ITEM, HINT_LOGIN, MallError, PushItem


def connector(store, **options):
    options = {"retries": 1, "backoff": 0.1, "log_poll_seconds": 0.2, "log_wait_seconds": 20, **options}
    return connector_for("rakuten-ftp", store["endpoint"], store["credentials"], None, 5, **options)


def ftp_session(sandbox, store):
    ftp = ftplib.FTP(timeout=5, encoding="utf-8")
    ftp.connect("127.0.0.1", sandbox.ftp_port)
    ftp.login(store["credentials"]["ftp_user"], store["credentials"]["ftp_password"])
    return ftp


def wait_for_log(ftp, stem, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        names = [n.rsplit("/", 1)[-1] for n in ftp.nlst("/ritem/logs")]
        found = [n for n in names if n.startswith(stem + ".")]
        if found:
            buffer = io.BytesIO()
            ftp.retrbinary(f"RETR /ritem/logs/{found[0]}", buffer.write)
            return found[0], buffer.getvalue()
        time.sleep(0.2)
    raise AssertionError(f"no log for {stem}")


def test_push_uploads_a_csv_and_the_log_confirms_every_item(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=3)
    items = [PushItem(n, i["code"], i["variant"], quantity=60 + n) for n, i in enumerate(sandbox.items(store["id"]))]
    results = connector(store).push(items)
    assert all(r.ok for r in results) and len(results) == len(items)
    assert sandbox.stock(store["id"]) == {(i.item_code, i.variant_code): i.quantity for i in items}


def test_an_unknown_item_is_reported_from_the_log_with_the_item_hint(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    results = {r.key: r for r in connector(store).push([
        PushItem(1, "tt-0001", "normal-inventory", quantity=5), PushItem(2, "no-such-item", "", quantity=5)])}
    assert results[1].ok
    assert not results[2].ok and results[2].hint == HINT_ITEM
    assert "商品管理番号欄(商品URL)で指定された商品が見つかりません" in results[2].message


def test_submit_returns_at_once_and_collect_reads_the_log_later_from_a_saved_handle(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    handle = connector(store).submit([PushItem(1, "tt-0001", "normal-inventory", quantity=12)])
    assert connector(store).collect(handle) is None  # RMS has not processed it yet
    saved = json.loads(json.dumps(handle))  # the sync engine keeps it in the database
    deadline = time.monotonic() + 10
    results = None
    while results is None and time.monotonic() < deadline:
        time.sleep(0.2)
        results = connector(store).collect(saved)
    assert [r.ok for r in results] == [True]
    assert sandbox.stock(store["id"])[("tt-0001", "normal-inventory")] == 12


def test_the_log_is_cp932_named_stem_dot_17_digit_timestamp(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    ftp = ftp_session(sandbox, store)
    try:
        ftp.storbinary("STOR /ritem/batch/normal-item.csv", io.BytesIO(
            "商品管理番号（商品URL）,SKU管理番号,在庫数\r\ntt-0001,normal-inventory,abc\r\n".encode("cp932")))
        name, data = wait_for_log(ftp, "normal-item")
    finally:
        ftp.quit()
    assert re.fullmatch(r"normal-item\.\d{17}\.csv", name)
    assert "在庫数欄に不正な値が入力されています" in data.decode("cp932")


def test_a_wrongly_named_file_gets_a_log_saying_so(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    ftp = ftp_session(sandbox, store)
    try:
        ftp.storbinary("STOR /ritem/batch/stock.csv", io.BytesIO("商品管理番号（商品URL）,在庫数\r\n".encode("cp932")))
        _name, data = wait_for_log(ftp, "stock")
        assert "ファイル名" in data.decode("cp932")
        assert "stock.csv" not in ftp.nlst("/ritem/batch")
    finally:
        ftp.quit()


def test_a_legacy_item_csv_sets_stock_and_a_clean_log_says_no_errors(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    ftp = ftp_session(sandbox, store)
    try:
        ftp.storbinary("STOR /ritem/batch/item.csv", io.BytesIO(
            "コントロールカラム,商品管理番号（商品URL）,在庫数\r\nu,tt-0001,33\r\n".encode("cp932")))
        _name, data = wait_for_log(ftp, "item")
    finally:
        ftp.quit()
    assert data.decode("cp932").strip() == "エラーはありません"
    assert sandbox.stock(store["id"])[("tt-0001", "normal-inventory")] == 33


def test_wrong_password_fails_the_connection_test_with_the_login_hint(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    wrong = dict(store, credentials=dict(store["credentials"], ftp_password="nope"))
    check = connector(wrong).check_login()
    assert not check.ok and check.hint == HINT_LOGIN
    assert connector(store).check_login().ok


def test_an_unreachable_server_is_a_transient_failure(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    moved = dict(store, endpoint="ftp://127.0.0.1:1")
    check = connector(moved).check_login()
    assert not check.ok and "127.0.0.1:1" in check.message


def test_the_ftp_route_says_it_cannot_read_stock(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    mall = connector(store)
    assert mall.can_read is False and mall.deferred is True
    read = mall.read([PushItem(1, "tt-0001", "normal-inventory")])[0]
    assert read.quantity is None and read.error_code == "not-readable"


def test_a_switched_off_ftp_account_fails_the_connection_test_and_the_push(sandbox):
    store = sandbox.create_store("rakuten-ftp", items=1)
    sandbox.faults(store["id"], auth="wrong")
    check = connector(store).check_login()
    assert not check.ok and check.hint == HINT_LOGIN
    with pytest.raises(MallError) as caught:
        connector(store).push([PushItem(1, "tt-0001", "normal-inventory", quantity=1)])
    assert caught.value.hint == HINT_LOGIN and not caught.value.transient


def sftp_store(sandbox, items=1):
    store = sandbox.create_store("rakuten-ftp", items=items)
    assert store["sftp_endpoint"] == f"sftp://127.0.0.1:{sandbox.sftp_port}"
    return dict(store, endpoint=store["sftp_endpoint"])


def test_over_sftp_the_same_account_uploads_and_reads_the_log_as_rms_does_today(sandbox):
    store = sftp_store(sandbox, items=2)
    mall = connector(store)
    assert mall.check_login().ok
    results = {r.key: r for r in mall.push([PushItem(1, "tt-0002", "m", quantity=44),
                                            PushItem(2, "gone-item", "", quantity=1)])}
    assert results[1].ok and sandbox.stock(store["id"])[("tt-0002", "m")] == 44
    assert not results[2].ok and results[2].hint == HINT_ITEM


def test_over_sftp_a_wrong_password_fails_with_the_login_hint(sandbox):
    store = sftp_store(sandbox)
    wrong = dict(store, credentials=dict(store["credentials"], ftp_password="nope"))
    check = connector(wrong).check_login()
    assert not check.ok and check.hint == HINT_LOGIN


def test_the_sftp_account_sees_only_its_own_folders(sandbox):
    import paramiko

    store = sftp_store(sandbox)
    transport = paramiko.Transport(("127.0.0.1", sandbox.sftp_port))
    try:
        transport.connect(username=store["credentials"]["ftp_user"], password=store["credentials"]["ftp_password"])
        client = paramiko.SFTPClient.from_transport(transport)
        assert sorted(client.listdir("/")) == ["ritem"]
        assert sorted(client.listdir("/ritem")) == ["batch", "logs"]
        assert sorted(client.listdir("/../../..")) == ["ritem"]  # no way out of the home
    finally:
        transport.close()


def test_over_sftp_the_connection_test_reports_the_host_key_and_a_trusted_key_is_accepted(sandbox):
    store = sftp_store(sandbox)
    check = connector(store).check_login()
    assert check.ok and re.fullmatch(r"ssh-rsa SHA256:[A-Za-z0-9+/]{43}", check.host_key)
    trusted = connector(store, host_key=check.host_key)
    assert trusted.check_login().ok
    assert trusted.push([PushItem(1, "tt-0001", "normal-inventory", quantity=9)])[0].ok


def test_over_sftp_another_host_key_is_refused_before_the_password_is_sent(sandbox):
    store = sftp_store(sandbox)
    before = sandbox.stock(store["id"])
    # A wrong password too: the refusal names the key, not the login, so the password was never tried.
    wrong = dict(store, credentials=dict(store["credentials"], ftp_password="nope"))
    other_key = "ssh-rsa SHA256:" + "A" * 43
    with pytest.raises(MallError) as caught:
        connector(wrong, host_key=other_key).push([PushItem(1, "tt-0001", "normal-inventory", quantity=9)])
    error = caught.value
    assert error.code == "host-key" and not error.transient and error.hint == HINT_LOGIN
    assert "ssh-rsa SHA256:" in error.message and other_key not in error.message  # it shows what was presented
    check = connector(store, host_key=other_key).check_login()
    assert not check.ok and check.host_key is None
    assert sandbox.stock(store["id"]) == before


def test_a_log_line_tatenpo_does_not_understand_is_reported_without_failing_the_file():
    from tatenpo.malls.rakuten_ftp import _results

    rows = [[1, "tt-0001", "normal-inventory"], [2, "tt-0002", "normal-inventory"]]
    log = ("処理件数：2件\r\n"
           "3,tt-0002,normal-inventory,商品管理番号欄(商品URL)で指定された商品が見つかりません\r\n").encode("cp932")
    first, second = _results(rows, log)
    assert first.ok and "処理件数" in first.message
    assert not second.ok and second.hint == "item" and "見つかりません" in second.message


def test_a_problem_of_the_whole_file_still_fails_every_row():
    from tatenpo.malls.rakuten_ftp import _results

    rows = [[1, "tt-0001", "normal-inventory"], [2, "tt-0002", "normal-inventory"]]
    log = "1,,,ファイルの形式が不正です\r\n".encode("cp932")
    assert [r.ok for r in _results(rows, log)] == [False, False]
