"""Helpers for tests that need the sandbox malls with settings of their own (SANDBOX_SMTP_URL, …) rather than the
session-wide `sandbox` fixture of conftest.py, a real SMTP server standing in for the shop's mail server, and
waiting on a state with a deadline instead of sleeping."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from aiosmtpd.controller import Controller

from .conftest import SandboxMalls

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """The first truthy value of `condition()`, asked again until it comes or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def logged_calls(sandbox: SandboxMalls, store_id: int, count: int) -> list[dict]:
    """The store's call log once it holds `count` calls. A call the sandbox kept hanging is logged only when
    it ends, which can be after the client gave up on it and its retry was served."""
    return wait_for(lambda: calls if len(calls := sandbox.calls(store_id)) >= count else None,
                    f"{count} calls in the sandbox's log of store {store_id}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sandbox(folder: Path, **settings: str | None) -> SandboxMalls:
    """`python -m sandbox` on free ports with its state in `folder`; a setting of None is removed from the
    environment (so a developer's own SANDBOX_SMTP_URL cannot leak into a test)."""
    ports_file = folder / "ports.json"
    env = dict(os.environ, SANDBOX_DB=str(folder / "sandbox.db"), SANDBOX_HTTP_PORT="0", SANDBOX_FTP_PORT="0",
               SANDBOX_SFTP_PORT="0", SANDBOX_PORTS_FILE=str(ports_file), SANDBOX_FTP_DELAY="0.5")
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    process = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=str(ROOT), env=env,
                               stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: ports_file.exists() or process.poll() is not None, "the sandbox malls to start")
    except AssertionError:
        process.kill()
        raise
    if process.poll() is not None:
        raise RuntimeError(f"the sandbox malls exited with {process.returncode}")
    ports = json.loads(ports_file.read_text())
    return SandboxMalls(ports["url"], ports["ftp"], process, ports.get("sftp", 0))


def stop_sandbox(malls: SandboxMalls) -> None:
    malls.process.terminate()
    try:
        malls.process.wait(10)
    except subprocess.TimeoutExpired:
        malls.process.kill()
        malls.process.wait()


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class _Refusal:
    reply: str
    times: int | None  # None: every time


@dataclass
class MailSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it accepts. `refuse(address, reply, times)`
    makes it answer the DATA of mails to that address with `reply` (e.g. "451 4.3.0 …") the next `times`
    times, or always."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list, repr=False)
    attempts: dict[str, list[float]] = field(default_factory=dict, repr=False)  # recipient → time of each DATA
    _refusals: dict[str, _Refusal] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _controller: Controller | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailSink:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def refuse(self, address: str, reply: str, times: int | None = None) -> None:
        with self._lock:
            self._refusals[address] = _Refusal(reply, times)

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.received if address in m.rcpt_tos]

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        with self._lock:
            for address in envelope.rcpt_tos:
                self.attempts.setdefault(address, []).append(time.monotonic())
            for address in envelope.rcpt_tos:
                refusal = self._refusals.get(address)
                if refusal is not None and refusal.times != 0:
                    if refusal.times is not None:
                        refusal.times -= 1
                    return refusal.reply
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content))
        return "250 2.0.0 OK"
