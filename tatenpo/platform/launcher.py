"""`make run`: start everything in the foreground — the embedded Redis (unless REDIS_URL is set), the
database migrations, the web server, two RQ workers (one for the pushes that wait minutes for a mall's
result log, one for everything else), the `rq cron` scheduler and the sandbox malls — and stop every one
of them on Ctrl-C. Each child runs in its own process group, so nothing is left behind."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from flask_migrate import upgrade

from tatenpo import create_app
from tatenpo.platform import config, demo, embedded_redis
from tatenpo.platform.config import embedded_redis_socket
from tatenpo.platform.redis_conn import DEFERRED_QUEUE, QUEUE_NAMES

ROOT = config.ROOT
BIN = Path(sys.executable).parent


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)


def _die_with_parent() -> None:
    """Runs in each child before exec: if the launcher is killed outright (SIGKILL), the kernel sends the
    child SIGTERM, so even then no process is left behind (Linux; elsewhere Ctrl-C still stops all)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _wait_for_port(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _stop(children: list[Child], redis_process, grace: float = 15) -> None:
    # Taken before any signal: RQ runs each job in a process group of its own, which killpg on the worker
    # does not reach, so every descendant is remembered and reaped by pid at the end.
    try:
        descendants = psutil.Process().children(recursive=True)
    except psutil.Error:
        descendants = []
    running = [c for c in children if c.process and c.process.poll() is None]
    for child in running:
        try:
            os.killpg(child.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace  # a running job may finish (an import commits, say)
    for child in running:
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for child in running:
        # Whatever is still alive (a worker finishing a long job, say) goes now, with its whole group.
        try:
            os.killpg(child.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.process.wait()
    leftovers = [p for p in descendants if p.is_running() and (redis_process is None or p.pid != redis_process.pid)]
    for process in leftovers:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(leftovers, timeout=5)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    if redis_process is not None:
        embedded_redis.stop(redis_process)


def main() -> int:
    env = dict(os.environ)
    env.setdefault("TATENPO_INSTANCE", str(ROOT / "instance"))
    host = env.get("HOST", "127.0.0.1")
    port = int(env.get("PORT", "5000"))

    redis_process = None
    if not env.get("REDIS_URL"):
        instance = env["TATENPO_INSTANCE"]
        redis_process = embedded_redis.start(Path(instance) / "redis", embedded_redis_socket(instance))
        env["REDIS_URL"] = "unix://" + embedded_redis_socket(instance)
    if not env.get("DATABASE_URL"):
        # Every process of the SQLite default queues its writes (sqlite_writers) rather than sleep-polling.
        env.setdefault("SQLITE_WRITER_LOCK", "1")
    os.environ.update(env)

    app = create_app()
    with app.app_context():
        upgrade()
        demo.prepare(app)
    smtp_host, smtp_port = app.config["ORDER_SMTP_HOST"], app.config["ORDER_SMTP_PORT"]
    smtp_shown = "127.0.0.1" if smtp_host in ("0.0.0.0", "::", "") else smtp_host
    # Sandbox purchases send their order mails to the receiver, as a mall does to the issued address.
    env.setdefault("SANDBOX_SMTP_URL", f"smtp://{smtp_shown}:{smtp_port}")

    python = str(BIN / "python")
    children = [
        Child("web", [str(BIN / "gunicorn"), "--bind", f"{host}:{port}", "--workers", env.get("WEB_WORKERS", "2"),
                      "--threads", env.get("WEB_THREADS", "4"), "--timeout", "120",
                      # One shared control socket in $HOME would collide between several instances.
                      "--no-control-socket", "app:app"]),
        # Pushes that wait minutes for a mall's result log get a worker of their own (redis_conn.QUEUE_NAMES).
        Child("worker", [python, "worker.py", "--queues", ",".join(q for q in QUEUE_NAMES if q != DEFERRED_QUEUE)]),
        Child("worker-deferred", [python, "worker.py", "--queues", DEFERRED_QUEUE]),
        Child("scheduler", [str(BIN / "rq"), "cron", "tatenpo.schedule", "--url", env["REDIS_URL"], "--path", str(ROOT)]),
        Child("mail", [python, "-m", "tatenpo.orders.smtp_receiver"]),  # 自動受注メール取込 over SMTP
    ]
    children += [Child(name, args) for name, args in demo.extra_processes(python)]

    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    try:
        for child in children:
            child.process = subprocess.Popen(
                child.args, cwd=ROOT, env=env, start_new_session=True, preexec_fn=_die_with_parent
            )
        if _wait_for_port(host, port, 60):
            shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
            print(f"\n  Tatenpo is running: http://{shown}:{port}/   (Ctrl-C stops everything)\n", flush=True)
            if _wait_for_port(smtp_shown, smtp_port, 30):
                print(f"  Order mails (SMTP): smtp://{smtp_shown}:{smtp_port} — the malls' mails to the issued addresses\n",
                      flush=True)
            for line in demo.banner_lines():
                print("  " + line, flush=True)
        while not stopping:
            for child in children:
                if child.process.poll() is not None:
                    print(f"tatenpo: {child.name} exited with {child.process.returncode}; stopping everything", file=sys.stderr)
                    exit_code = 1
                    stopping = True
                    break
            time.sleep(0.3)
    finally:
        _stop(children, redis_process, float(env.get("STOP_GRACE_SECONDS", "15")))
    print("tatenpo: stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
