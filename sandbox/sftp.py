"""The 楽天 upload server as RMS runs it today: SFTP (paramiko), beside the FTP server, with the same accounts,
folders and asynchronous processing (see ftp.py). The host key is made once and kept next to the state file."""
from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

import paramiko
from paramiko import ServerInterface, SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.sftp import SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_PERMISSION_DENIED

from .ftp import Processor, home_of
from .state import State

log = logging.getLogger("sandbox.sftp")


class _Accounts(ServerInterface):
    """Password logins of the rakuten-ftp sandbox stores; remembers the store's home for the SFTP subsystem."""

    def __init__(self, state: State, root: Path) -> None:
        self.state = state
        self.root = root
        self.home: Path | None = None

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        store = self.state.find_store("rakuten-ftp", ftp_user=username)
        if store is None or store["credentials"].get("ftp_password") != password or store["faults"].get("auth"):
            return paramiko.AUTH_FAILED
        self.home = home_of(self.root, store["id"])
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


def _files(processor: Processor):
    class Handle(SFTPHandle):
        def close(self):
            super().close()
            if self.__dict__.get("uploaded"):
                processor.received(self.uploaded)

    class Files(SFTPServerInterface):
        """The store's home as the whole file system; nothing outside it is reachable."""

        def __init__(self, server: _Accounts, *args, **kwargs) -> None:
            super().__init__(server, *args, **kwargs)
            self.home = server.home.resolve()

        def _real(self, path: str) -> Path:
            real = (self.home / self.canonicalize(path).lstrip("/")).resolve()
            if real != self.home and self.home not in real.parents:
                raise PermissionError(path)
            return real

        def canonicalize(self, path):
            parts: list[str] = []
            for part in str(path).split("/"):
                if part in ("", "."):
                    continue
                if part == "..":
                    if parts:
                        parts.pop()
                    continue
                parts.append(part)
            return "/" + "/".join(parts)

        def list_folder(self, path):
            try:
                folder = self._real(path)
                return [SFTPAttributes.from_stat(os.stat(folder / name), filename=name) for name in os.listdir(folder)]
            except PermissionError:
                return SFTP_PERMISSION_DENIED
            except OSError:
                return SFTP_NO_SUCH_FILE

        def stat(self, path):
            try:
                return SFTPAttributes.from_stat(os.stat(self._real(path)))
            except PermissionError:
                return SFTP_PERMISSION_DENIED
            except OSError:
                return SFTP_NO_SUCH_FILE

        lstat = stat

        def open(self, path, flags, attr):
            try:
                real = self._real(path)
                descriptor = os.open(real, flags | getattr(os, "O_BINARY", 0), 0o644)
            except PermissionError:
                return SFTP_PERMISSION_DENIED
            except OSError:
                return SFTP_NO_SUCH_FILE
            writing = flags & (os.O_WRONLY | os.O_RDWR)
            mode = ("ab" if flags & os.O_APPEND else "wb") if flags & os.O_WRONLY else \
                ("a+b" if flags & os.O_APPEND else "r+b") if flags & os.O_RDWR else "rb"
            handle = Handle(flags)
            handle.filename = str(real)
            handle.readfile = handle.writefile = os.fdopen(descriptor, mode)
            if writing and real.parent.name == "batch":
                handle.uploaded = str(real)
            return handle

        def remove(self, path):
            try:
                self._real(path).unlink()
                return SFTP_OK
            except PermissionError:
                return SFTP_PERMISSION_DENIED
            except OSError:
                return SFTP_NO_SUCH_FILE

        def rename(self, oldpath, newpath):
            try:
                self._real(oldpath).rename(self._real(newpath))
                return SFTP_OK
            except PermissionError:
                return SFTP_PERMISSION_DENIED
            except OSError:
                return SFTP_NO_SUCH_FILE

    return Files


def _host_key(path: Path) -> paramiko.RSAKey:
    if path.exists():
        return paramiko.RSAKey(filename=str(path))
    key = paramiko.RSAKey.generate(2048)
    key.write_private_key_file(str(path))
    return key


def start(state: State, host: str, port: int, root: Path, processor: Processor, key_path: Path) -> socket.socket:
    """Listen on (host, port) in a background thread; returns the listening socket (its port when 0 was asked)."""
    key = _host_key(key_path)
    files = _files(processor)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)

    def session(connection: socket.socket) -> None:
        transport = paramiko.Transport(connection)
        try:
            transport.add_server_key(key)
            transport.set_subsystem_handler("sftp", SFTPServer, files)
            transport.start_server(server=_Accounts(state, root))
            while transport.is_active():
                transport.join(1)
        except Exception:  # one broken client must not stop the server
            log.debug("sftp session ended", exc_info=True)
        finally:
            transport.close()

    def serve() -> None:
        while True:
            connection, _address = listener.accept()
            threading.Thread(target=session, args=(connection,), daemon=True, name="sftp-session").start()

    threading.Thread(target=serve, daemon=True, name="sftp").start()
    return listener
