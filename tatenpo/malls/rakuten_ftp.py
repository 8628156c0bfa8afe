"""楽天市場 through the FTP route: a stock CSV (`normal-item*.csv`, CP932) uploaded to /ritem/batch, results
read later from the log RMS writes to /ritem/logs (`<stem>.<yyyymmddHHMMSSfff>.csv`).

The push is deferred (see base.py): `submit()` uploads and returns a handle; `collect(handle)` reads the log
when it is there. The log's lines are `row,商品管理番号,SKU管理番号,message` [inferred: RMS does not publish the
columns]; row 0 or 1 is a problem of the whole file, and a line of another shape is reported, not a failure.
How long to wait for the log is the setting RAKUTEN_FTP_LOG_WAIT_SECONDS (default 300 s; RMS publishes no
processing time: docs/malls/rakuten.md).
The endpoint's scheme picks the protocol: sftp://upload.rakuten.ne.jp:22 (RMS today, the default) or
ftp://…:21 (older setups).

SFTP host key: trusted on first use. The 接続テスト reports the key the server presents (LoginCheck.host_key)
and the store keeps it; from then on the connector is given that key (`host_key`) and refuses any other one
*before* sending the password, because a different key means another server may be listening in. The shop
clears the kept key in the store's settings when Rakuten announces a new one.
"""
from __future__ import annotations

import base64
import csv
import ftplib
import hashlib
import io
import logging
import secrets
import socket
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Optional
from urllib.parse import urlparse

import paramiko
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tatenpo.malls.base import (
    HINT_ITEM,
    HINT_LOGIN,
    Connector,
    CredentialField,
    ItemRef,
    ItemResult,
    LoginCheck,
    MallError,
    PushItem,
    ReadResult,
)
from tatenpo.malls.pacing import sleep_backoff

log = logging.getLogger(__name__)

BATCH_DIR = "/ritem/batch"
LOGS_DIR = "/ritem/logs"
CLEAN = "エラーはありません"
HEADERS = ["商品管理番号（商品URL）", "SKU管理番号", "在庫数"]
MAX_QUANTITY = 99999
JST = timezone(timedelta(hours=9))
NAME = "楽天FTP"
ITEM_PROBLEMS = ("見つかりません", "登録済み")  # the log lines that mean the item differs between the mall and us
TRUSTED_HOST_KEY = "sftp_host_key"  # the store setting holding the SFTP host key it trusts


class _FtpSession:
    host_key = None  # plain FTP has none

    def __init__(self, host: str, port: int, user: str, password: str, timeout: float) -> None:
        self.ftp = ftplib.FTP(timeout=timeout, encoding="utf-8")
        try:
            self.ftp.connect(host, port)
            self.ftp.login(user, password)
        except ftplib.error_perm as exc:
            self.ftp.close()
            raise PermissionError(str(exc)) from exc
        except BaseException:
            self.ftp.close()
            raise

    def has_folder(self, path: str) -> bool:
        try:
            self.ftp.cwd(path)
            return True
        except ftplib.error_perm:
            return False

    def upload(self, path: str, data: bytes) -> None:
        self.ftp.storbinary(f"STOR {path}", io.BytesIO(data))

    def names(self, folder: str) -> list[str]:
        try:
            return [name.rsplit("/", 1)[-1] for name in self.ftp.nlst(folder)]
        except ftplib.error_perm as exc:  # an empty folder answers 550 on some servers
            if str(exc).startswith("550"):
                return []
            raise

    def download(self, path: str) -> bytes:
        buffer = io.BytesIO()
        self.ftp.retrbinary(f"RETR {path}", buffer.write)
        return buffer.getvalue()

    def close(self) -> None:
        try:
            self.ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            self.ftp.close()


def fingerprint(key: paramiko.PKey) -> str:
    """A host key as OpenSSH prints it: `ssh-ed25519 SHA256:…`."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class HostKeyMismatch(Exception):
    def __init__(self, presented: str) -> None:
        super().__init__(presented)
        self.presented = presented


class _SftpSession:
    def __init__(self, host: str, port: int, user: str, password: str, timeout: float,
                 host_key: Optional[str] = None) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        self.transport = paramiko.Transport(sock)
        self.transport.banner_timeout = self.transport.auth_timeout = timeout
        try:
            self.transport.start_client(timeout=timeout)
            self.host_key = fingerprint(self.transport.get_remote_server_key())
            if host_key and self.host_key != host_key:
                raise HostKeyMismatch(self.host_key)  # before the password leaves this machine
            self.transport.auth_password(user, password)
        except paramiko.AuthenticationException as exc:
            self.transport.close()
            raise PermissionError(str(exc)) from exc
        except BaseException:
            self.transport.close()
            raise
        self.sftp = paramiko.SFTPClient.from_transport(self.transport)
        self.sftp.get_channel().settimeout(timeout)

    def has_folder(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
            return True
        except OSError:
            return False

    def upload(self, path: str, data: bytes) -> None:
        self.sftp.putfo(io.BytesIO(data), path, confirm=False)

    def names(self, folder: str) -> list[str]:
        return self.sftp.listdir(folder)

    def download(self, path: str) -> bytes:
        buffer = io.BytesIO()
        self.sftp.getfo(path, buffer)
        return buffer.getvalue()

    def close(self) -> None:
        self.sftp.close()
        self.transport.close()


# What a broken connection looks like from either library.
TRANSFER_ERRORS = (OSError, EOFError, ftplib.Error, paramiko.SSHException)


class RakutenFtpConnector(Connector):
    key = "rakuten-ftp"
    label = "楽天市場 (FTP/CSV)"
    family = "rakuten"
    family_name = "楽天市場"
    default_endpoint = "sftp://upload.rakuten.ne.jp:22"  # SFTP today; ftp://…:21 in older setups
    endpoint_schemes = ("sftp", "ftp")
    hosts = ("upload.rakuten.ne.jp",)  # the RMS upload server (docs/malls/rakuten.md)
    credential_fields = (
        CredentialField("ftp_user", _l("Stock sync login ID"), secret=False,
                        help=_l("The FTP account of RMS (the upload server's login ID).")),
        CredentialField("ftp_password", _l("Stock sync login password")),
    )
    preparation = _l("楽天市場 (CSV route): an FTP account for the item batch folder (the login ID and password you "
                     "enter in step 5).")
    config_options: ClassVar[Mapping[str, str]] = {
        **Connector.config_options,
        "RAKUTEN_FTP_LOG_POLL_SECONDS": "log_poll_seconds",
        "RAKUTEN_FTP_LOG_WAIT_SECONDS": "log_wait_seconds",
    }
    max_batch = 50_000  # RMS' limit for one legacy upload; kept for the SKU format too
    can_read = False
    deferred = True

    def __init__(self, endpoint: Optional[str], credentials: dict, redis=None, timeout: float = 20,
                 retries: int = 3, backoff: float = 1.0, log_poll_seconds: float = 10.0,
                 log_wait_seconds: float = 300.0, host_key: Optional[str] = None) -> None:
        url = urlparse(endpoint or self.default_endpoint)
        self.secure = url.scheme == "sftp"
        self.host = url.hostname or "upload.rakuten.ne.jp"
        self.port = url.port or (22 if self.secure else 21)
        self.user = credentials.get("ftp_user", "")
        self.password = credentials.get("ftp_password", "")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.log_poll_seconds = log_poll_seconds
        self.log_wait_seconds = log_wait_seconds
        self.host_key = host_key  # the SFTP host key the store trusts (None: not known yet)
        self.presented_host_key: Optional[str] = None

    @classmethod
    def options_from(cls, store_settings: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        """Besides the app's tuning, the SFTP host key the store trusts (None until its first 接続テスト)."""
        return {**super().options_from(store_settings, config), "host_key": store_settings.get(TRUSTED_HOST_KEY)}

    # FTP --------------------------------------------------------------------------------------

    def _connect(self):
        """A logged-in session (FTP or SFTP), retrying connection trouble; a refused login is raised at once."""
        if not self.user or not self.password:
            raise MallError(_("Enter the stock sync login ID and password (the RMS FTP account) in the EC site "
                              "settings."), transient=False, hint=HINT_LOGIN, code="no-credentials")
        attempt = 0
        while True:
            try:
                if self.secure:
                    session = _SftpSession(self.host, self.port, self.user, self.password, self.timeout, self.host_key)
                else:
                    session = _FtpSession(self.host, self.port, self.user, self.password, self.timeout)
                self.presented_host_key = session.host_key
                return session
            except HostKeyMismatch as exc:
                self.presented_host_key = exc.presented
                raise MallError(_("The SFTP server %(host)s presented a host key other than the one confirmed by the "
                                  "connection test (%(presented)s). Nothing was sent. If Rakuten announced a new key, "
                                  "forget the confirmed one in the EC site settings and test the connection again.",
                                  host=self.host, presented=exc.presented),
                                transient=False, hint=HINT_LOGIN, code="host-key") from exc
            except PermissionError as exc:
                raise MallError(_("The Rakuten FTP server rejected the stock sync login ID or password."),
                                transient=False, hint=HINT_LOGIN, code="login") from exc
            except TRANSFER_ERRORS as exc:
                error = MallError(_("Could not reach the Rakuten FTP server (%(host)s:%(port)s).", host=self.host,
                                    port=self.port), transient=True,
                                  code="timeout" if isinstance(exc, socket.timeout) else "connection")
                if attempt >= self.retries:
                    raise error from exc
                sleep_backoff(attempt, self.backoff)
                attempt += 1

    # Interface --------------------------------------------------------------------------------

    def check_login(self) -> LoginCheck:
        try:
            session = self._connect()
        except MallError as exc:
            return LoginCheck(False, exc.message, exc.hint)
        try:
            folders = session.has_folder(BATCH_DIR) and session.has_folder(LOGS_DIR)
        except TRANSFER_ERRORS as exc:
            return LoginCheck(False, _("Reading the result log from the Rakuten FTP server failed: %(detail)s",
                                       detail=str(exc)[:200]))
        finally:
            session.close()
        if not folders:
            return LoginCheck(False, _("The FTP account has no %(batch)s or %(logs)s folder.", batch=BATCH_DIR,
                                       logs=LOGS_DIR), HINT_LOGIN)
        return LoginCheck(True, _("Connected to %(mall)s.", mall=NAME), host_key=self.presented_host_key)

    def submit(self, items: list[PushItem]) -> dict:
        """Upload one stock CSV per max_batch items; the handle lists every file and which row is which item."""
        rejected = [[i.key, _("The quantity must be from 0 to 99999 on Rakuten."), "IE0003"]
                    for i in items if not 0 <= i.quantity <= MAX_QUANTITY]
        valid = [i for i in items if 0 <= i.quantity <= MAX_QUANTITY]
        files = []
        if valid:
            session = self._connect()
            try:
                for start in range(0, len(valid), self.max_batch):
                    chunk = valid[start:start + self.max_batch]
                    stamp = datetime.now(JST).strftime("%Y%m%d%H%M%S")
                    stem = f"normal-item-tatenpo-{stamp}-{secrets.token_hex(3)}"
                    session.upload(f"{BATCH_DIR}/{stem}.csv", _stock_csv(chunk))
                    files.append({"stem": stem, "rows": [[i.key, i.item_code, i.variant_code] for i in chunk]})
            except TRANSFER_ERRORS as exc:
                raise MallError(_("The upload to the Rakuten FTP server failed: %(detail)s", detail=str(exc)[:200]),
                                transient=True, code="upload") from exc
            finally:
                session.close()
        now = time.time()
        return {"files": files, "rejected": rejected, "uploaded_at": now, "give_up_at": now + self.log_wait_seconds}

    def collect(self, handle: dict) -> Optional[list[ItemResult]]:
        """The results once RMS wrote a log for every uploaded file; None while one is missing (before
        handle["give_up_at"]); after that, the items without a log fail as transient (push them again)."""
        results = [ItemResult(key, False, message, code) for key, message, code in handle.get("rejected", [])]
        if not handle["files"]:
            return results
        session = self._connect()
        try:
            names = session.names(LOGS_DIR)
            for upload in handle["files"]:
                logs = sorted(n for n in names if n.startswith(upload["stem"] + ".") and n.endswith(".csv"))
                if not logs:
                    if time.time() < handle["give_up_at"]:
                        return None
                    message = _("RMS wrote no result log for %(file)s within %(minutes)s minutes; the stock may not "
                                "have been updated.", file=upload["stem"] + ".csv",
                                minutes=round(self.log_wait_seconds / 60, 1))
                    results += [ItemResult(key, False, message, "no-log", True) for key, _c, _v in upload["rows"]]
                    continue
                results += _results(upload["rows"], session.download(f"{LOGS_DIR}/{logs[-1]}"))
        except TRANSFER_ERRORS as exc:
            raise MallError(_("Reading the result log from the Rakuten FTP server failed: %(detail)s",
                              detail=str(exc)[:200]), transient=True, code="log") from exc
        finally:
            session.close()
        return results

    def push(self, items: list[PushItem]) -> list[ItemResult]:
        """Upload, then wait for the log (blocking; up to log_wait_seconds)."""
        handle = self.submit(items)
        while True:
            results = self.collect(handle)
            if results is not None:
                return results
            time.sleep(self.log_poll_seconds)

    def read(self, items: list[ItemRef]) -> list[ReadResult]:
        message = _("The FTP route cannot read stock from Rakuten; Tatenpo checks the result log instead.")
        return [ReadResult(i.key, None, message, None, "not-readable") for i in items]


def _stock_csv(items: list[PushItem]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for item in items:
        writer.writerow([item.item_code, item.variant_code or "normal-inventory", item.quantity])
    return out.getvalue().encode("cp932")


def _results(rows: list[list], data: bytes) -> list[ItemResult]:
    """One result per uploaded row from RMS's log. A line `row,商品管理番号,SKU管理番号,message` with row ≥ 2 is a
    problem of that row; row 0 or 1 is a problem of the whole file (its name, its header); a line of any other
    shape is not understood, so it is reported beside every row's result instead of failing rows it may not be
    about (RMS does not publish the log's layout: docs/malls/rakuten.md)."""
    text = data.decode("cp932", errors="replace")
    lines = [line for line in csv.reader(io.StringIO(text)) if line and any(cell.strip() for cell in line)]
    if lines and CLEAN in lines[0][0]:
        return [ItemResult(key, True) for key, _c, _v in rows]
    by_row: dict[int, str] = {}
    whole_file: list[str] = []
    unknown: list[str] = []
    for line in lines:
        first = line[0].strip()
        message = line[-1].strip()
        if first.isdigit() and int(first) >= 2:
            by_row.setdefault(int(first), message)
        elif first.isdigit():
            whole_file.append(message)
        elif CLEAN not in ",".join(line):
            unknown.append(",".join(cell.strip() for cell in line))
    if whole_file:
        detail = " / ".join(whole_file)
        return [ItemResult(key, False, _("Rakuten FTP log: %(detail)s", detail=detail), "ftp-log") for key, _c, _v in rows]
    if unknown:
        log.warning("Rakuten FTP log lines not understood: %s", " / ".join(unknown))
    note = _("The Rakuten FTP log also says (not understood by Tatenpo): %(lines)s", lines=" / ".join(unknown)) \
        if unknown else None
    results = []
    for row_number, (key, _code, _variant) in enumerate(rows, start=2):  # row 1 is the header
        message = by_row.get(row_number)
        if message is None:
            results.append(ItemResult(key, True, note))
        else:
            hint = HINT_ITEM if any(p in message for p in ITEM_PROBLEMS) else None
            results.append(ItemResult(key, False, _("Rakuten FTP log: %(detail)s", detail=message), "ftp-log", False, hint))
    return results
