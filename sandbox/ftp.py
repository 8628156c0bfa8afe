"""The 楽天 FTP route: a real FTP server (pyftpdlib) with one account per rakuten-ftp sandbox store.

A `normal-item*.csv` (SKU format) or legacy `item.csv` uploaded to /ritem/batch is processed a few seconds
later (SANDBOX_FTP_DELAY, default 3 s), as RMS does asynchronously; the file then leaves /ritem/batch and a
CP932 result log appears in /ritem/logs named `<stem>.<yyyymmddHHMMSSfff>.csv`: 「エラーはありません」 when
clean, otherwise one line per problem: `row,商品管理番号,SKU管理番号,message` [inferred: the real log's
columns are not published]. Valid rows are applied even when other rows fail.
"""
from __future__ import annotations

import csv
import io
import logging
import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from . import catalog, listing_csv, order_mails, rakuten
from .malls import Endpoints, ListingFile, SandboxMall
from .state import State

log = logging.getLogger("sandbox.ftp")
JST = timezone(timedelta(hours=9))

MSG_CLEAN = "エラーはありません"
MSG_UNKNOWN_ITEM = "商品管理番号欄(商品URL)で指定された商品が見つかりません"
MSG_EXISTS = "商品管理番号(商品URL)欄にすでに登録済みのものは指定できません"
MSG_UNKNOWN_SKU = "SKU管理番号欄で指定されたSKUが見つかりません"  # [inferred]
MSG_BAD_QUANTITY = "在庫数欄に不正な値が入力されています"  # [inferred]
MSG_BAD_NAME = "ファイル名が不正です。normal-item*.csv または item.csv でアップロードしてください"  # [inferred]
MSG_BAD_FILE = "ファイルの形式が不正です。必須項目「商品管理番号（商品URL）」がありません"  # [inferred]
MSG_TOO_MANY = "一度にアップロードできる商品数(50,000件)を超えています"  # [inferred]
MANAGE = "商品管理番号（商品URL）"
LEGACY_LIMIT = 50_000


class StoreAuthorizer(DummyAuthorizer):
    """FTP accounts are the rakuten-ftp sandbox stores' credentials, looked up at each login."""

    def __init__(self, state: State, root: Path) -> None:
        super().__init__()
        self.state = state
        self.root = root
        self._lock = threading.Lock()

    def validate_authentication(self, username, password, handler):
        store = self.state.find_store("rakuten-ftp", ftp_user=username)
        if store is None or store["credentials"].get("ftp_password") != password or store["faults"].get("auth"):
            raise AuthenticationFailed("Login incorrect.")
        home = home_of(self.root, store["id"])
        with self._lock:
            self.user_table.pop(username, None)  # the password may have changed since the last login
            self.add_user(username, password, str(home), perm="elradfmwMT")


def home_of(root: Path, store_id: int) -> Path:
    home = root / str(store_id)
    (home / "ritem" / "batch").mkdir(parents=True, exist_ok=True)
    (home / "ritem" / "logs").mkdir(parents=True, exist_ok=True)
    return home


class Processor(threading.Thread):
    """Picks up finished uploads after the delay and writes their result logs."""

    def __init__(self, state: State, root: Path, delay: float) -> None:
        super().__init__(daemon=True, name="ftp-batch")
        self.state = state
        self.root = root
        self.delay = delay
        self._queue: list[tuple[float, Path]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def received(self, path: str) -> None:
        with self._lock:
            self._queue.append((time.monotonic() + self.delay, Path(path)))
        self._wake.set()

    def run(self) -> None:
        while True:
            self._wake.wait(0.2)
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                due = [p for t, p in self._queue if t <= now]
                self._queue = [(t, p) for t, p in self._queue if t > now]
            for path in due:
                try:
                    process(self.state, path)
                except Exception:  # one broken upload must not stop the route for every store
                    log.exception("processing %s failed", path)


def _store_id(path: Path) -> Optional[int]:
    # <root>/<store id>/ritem/batch/<file>
    try:
        return int(path.parent.parent.parent.name)
    except ValueError:
        return None


def process(state: State, path: Path) -> Path:
    """Apply one uploaded file and write its log; returns the log's path."""
    if not path.exists() or path.parent.name != "batch":
        return path
    store_id = _store_id(path)
    data = path.read_bytes()
    name = path.name
    problems: list[tuple[int, str, str, str]] = []
    if re.fullmatch(r"normal-item.*\.csv", name, re.IGNORECASE):
        problems = _apply(state, store_id, data, legacy=False)
    elif name.lower() == "item.csv":
        problems = _apply(state, store_id, data, legacy=True)
    else:
        problems = [(0, "", "", MSG_BAD_NAME)]
    stamp = datetime.now(JST).strftime("%Y%m%d%H%M%S%f")[:17]
    log_path = path.parent.parent / "logs" / f"{path.stem}.{stamp}.csv"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if problems:
        writer.writerows(problems)
    else:
        writer.writerow([MSG_CLEAN])
    tmp = log_path.with_suffix(".tmp")
    tmp.write_bytes(out.getvalue().encode("cp932", errors="replace"))
    tmp.rename(log_path)  # a log is never seen half-written
    path.unlink()
    return log_path


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("cp932")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


def _apply(state: State, store_id: Optional[int], data: bytes, legacy: bool) -> list[tuple[int, str, str, str]]:
    reader = csv.DictReader(io.StringIO(_decode(data), newline=""))
    if not reader.fieldnames or MANAGE not in reader.fieldnames:
        return [(1, "", "", MSG_BAD_FILE)]
    rows = list(reader)
    if legacy and len(rows) > LEGACY_LIMIT:
        return [(1, "", "", MSG_TOO_MANY)]
    known = {}
    for item in state.items(store_id) if store_id is not None else []:
        known.setdefault(item["code"], {})[item["variant"]] = item
    problems, changes = [], []
    for line, row in enumerate(rows, start=2):
        manage = (row.get(MANAGE) or "").strip().lower()
        variant = (row.get("SKU管理番号") or "").strip() or "normal-inventory"
        text = (row.get("在庫数") or "").strip()
        control = (row.get("コントロールカラム") or "u").strip().lower() if legacy else "u"
        if not manage:
            continue
        if control == "n" and manage in known:
            problems.append((line, manage, "", MSG_EXISTS))
            continue
        if manage not in known:
            problems.append((line, manage, "" if legacy else variant, MSG_UNKNOWN_ITEM))
            continue
        if control == "d":
            for v in list(known[manage]):
                state.delete_item(store_id, manage, v)
            continue
        if not text:  # a product row of the SKU format carries no stock
            continue
        if variant not in known[manage]:
            problems.append((line, manage, variant, MSG_UNKNOWN_SKU))
            continue
        if not text.isdigit() or int(text) > 99999:
            problems.append((line, manage, variant, MSG_BAD_QUANTITY))
            continue
        changes.append((manage, variant, int(text)))
    if changes:
        state.set_quantities(store_id, changes, park_unknown=False)
    return problems


def start(state: State, host: str, port: int, root: Path, delay: float) -> tuple[FTPServer, Processor]:
    processor = Processor(state, root, delay)
    processor.start()

    class Handler(FTPHandler):
        authorizer = StoreAuthorizer(state, root)
        banner = "Tatenpo sandbox: 楽天 FTP"

        def on_file_received(self, file):
            processor.received(file)

    Handler.permit_foreign_addresses = False
    server = FTPServer((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"handle_exit": False}, daemon=True, name="ftp")
    thread.start()
    return server, processor


# The registry entry (sandbox.malls) ------------------------------------------------------------------------

def _credentials(store_id: int, shop: str) -> dict[str, str]:
    return {"ftp_user": f"sandbox{store_id}", "ftp_password": secrets.token_hex(6)}


def _describe(store: dict, where: Endpoints) -> dict:
    data = {"host": where.ftp_host, "port": where.ftp_port}
    if where.sftp_port:  # the same account over SFTP, as RMS runs it today
        data["sftp_endpoint"] = f"sftp://{where.ftp_host}:{where.sftp_port}"
    return data


SANDBOX_MALLS = [SandboxMall(
    key="rakuten-ftp", name="楽天市場 (FTP)", issue_credentials=_credentials,
    endpoint=lambda store, where: f"ftp://{where.ftp_host}:{where.ftp_port}",
    identity=catalog.rakuten_identity,
    files=(ListingFile("normal-item", "normal-item.csv", listing_csv.rakuten_normal_item),),
    # The FTP route is the same 楽天市場 shop: the same mails and order numbers as the API route.
    compose_mail=order_mails.rakuten_mail, compose_cancellation=order_mails.rakuten_cancellation,
    order_number=order_mails.rakuten_number, store_key=rakuten.shop_id, buyer="楽天 太郎", describe=_describe,
)]
