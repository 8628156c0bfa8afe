"""`make run`: start everything in the foreground — the embedded Redis (unless REDIS_URL is set), the
database migrations, the web server, two RQ workers (one for the pushes that wait minutes for a mall's
result log, one for everything else), the `rq cron` scheduler and the sandbox malls — and keep them running:
a process that dies is started again after a pause that doubles with each quick failure (1 s, 2 s, 4 s … at
most 30 s; back to 1 s once it has run a minute). Only Ctrl-C (SIGINT or SIGTERM to the launcher) stops
them all. Each child runs in its own process group, so nothing is left behind.

Everything it makes is for the owner only (umask 077); the console shows the banner, warnings and errors,
and each process's full JSON log goes to instance/logs/<process>.log (platform/logs)."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from flask import current_app
from flask_migrate import upgrade

from tatenpo import create_app
from tatenpo.platform import config, demo, embedded_redis, instance, logs
from tatenpo.platform.config import embedded_redis_socket
from tatenpo.platform.redis_conn import DEFERRED_QUEUE, worker_queues

ROOT = config.ROOT
BIN = Path(sys.executable).parent
log = logging.getLogger(__name__)

FIRST_PAUSE = 1.0  # seconds before the first restart of a process that died
LONGEST_PAUSE = 30.0
STEADY_SECONDS = 60.0  # a process that ran this long before dying starts again after FIRST_PAUSE
WEB_REDIS_TIMEOUT = "2"  # seconds: a Redis that hangs holds a page no longer than this (platform/redis_conn)


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)
    env: dict[str, str] = field(default_factory=dict)  # this child's own settings, over the shared ones
    launch: Callable[[], subprocess.Popen] | None = field(default=None, repr=False)  # instead of args
    started_at: float = 0.0
    pause: float = 0.0  # the pause before the last restart; 0 while it has not failed
    restart_at: float | None = None  # when it is due to start again after dying
    planned: bool = False  # stopped by the launcher to start again at once (not a failure)


def _start(child: Child, env: dict[str, str]) -> None:
    child.restart_at = None
    child.started_at = time.monotonic()
    if child.launch is not None:
        child.process = child.launch()
        return
    child.process = subprocess.Popen(
        child.args, cwd=ROOT, env={**env, logs.LOG_NAME_ENV: child.name, **child.env},
        start_new_session=True, preexec_fn=_die_with_parent,
    )


def _supervise(child: Child, env: dict[str, str], now: float) -> None:
    """Start a child that is due to start again; notice one that died and schedule its restart."""
    if child.process is None:
        if child.restart_at is not None and now >= child.restart_at:
            try:
                _start(child, env)
            except (OSError, RuntimeError) as exc:  # the embedded Redis did not come up: try again later
                log.error("%s did not start: %s", child.name, exc)
                _schedule_restart(child, now)
        return
    code = child.process.poll()
    if code is None:
        return
    ran = now - child.started_at
    if child.planned:
        child.planned, child.process, child.restart_at = False, None, now
        return
    try:
        # What the dead process left in its group (a gunicorn worker, a job it was running) goes with it.
        os.killpg(child.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.process = None
    _schedule_restart(child, now, ran)
    log.warning("%s exited with %s after %.0f s; starting it again in %.0f s", child.name, code, ran, child.pause)


# RQ workers and `rq cron` register themselves in Redis once, when they start: an embedded Redis that came back
# without its latest data would not know them (healthz: no worker), so they start again after it.
REGISTERED_IN_REDIS = ("worker", "scheduler")


def _restart_registered(children: list[Child]) -> None:
    for child in children:
        if child.name.startswith(REGISTERED_IN_REDIS) and child.process is not None and child.process.poll() is None:
            child.planned = True
            try:
                os.killpg(child.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _schedule_restart(child: Child, now: float, ran: float = 0.0) -> None:
    steady = ran >= STEADY_SECONDS or child.pause == 0
    child.pause = FIRST_PAUSE if steady else min(child.pause * 2, LONGEST_PAUSE)
    child.restart_at = now + child.pause


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
    """Stop every child (the embedded Redis, `redis_process`, last: the others may still be using it)."""
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


def _migrate() -> None:
    """Upgrade the database. Alembic's logging setup (migrations/env.py) writes every step to stderr and
    replaces the process's logging: its lines go to the launcher's log file, and our logging comes back."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            upgrade()
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
    finally:
        logs.reset(current_app.config["LOG_LEVEL"])
    for line in captured.getvalue().splitlines():
        log.info("%s", line)


def main() -> int:
    os.umask(0o077)  # the database, uploads, mails, logs and keys of every child: owner only
    env = dict(os.environ)
    env.setdefault("TATENPO_INSTANCE", str(ROOT / "instance"))
    host = env.get("HOST", "127.0.0.1")
    port = int(env.get("PORT", "5000"))
    folder = instance.private_folder(env["TATENPO_INSTANCE"])
    instance.make_private(folder)  # what an older version left readable by others
    env.setdefault(logs.LOG_DIR_ENV, str(folder / "logs"))
    env[logs.LOG_NAME_ENV] = "launcher"

    redis_child = None
    if not env.get("REDIS_URL"):
        socket_path = embedded_redis_socket(str(folder))
        # Started again on its own data (instance/redis/) if it dies, like every other child.
        redis_child = Child("redis", [], launch=lambda: embedded_redis.start(folder / "redis", socket_path))
        _start(redis_child, env)
        env["REDIS_URL"] = "unix://" + socket_path
    if not env.get("DATABASE_URL"):
        # Every process of the SQLite default queues its writes (sqlite_writers) rather than sleep-polling.
        env.setdefault("SQLITE_WRITER_LOCK", "1")
    if demo.sandbox_available():
        # A trial's stores point at the sandbox malls: their host may receive credentials (setup/endpoints.py).
        env.setdefault("ALLOWED_MALL_HOSTS", env.get("SANDBOX_HOST", "127.0.0.1"))
    os.environ.update(env)

    app = create_app()
    with app.app_context():
        _migrate()
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
                      "--no-control-socket", "--log-level", "warning", "app:app"],
              env={"REDIS_SOCKET_TIMEOUT_SECONDS": env.get("REDIS_SOCKET_TIMEOUT_SECONDS", WEB_REDIS_TIMEOUT)}),
        # SYNC_WORKERS workers, so one slow mall never stalls the other stores; the first takes imports first,
        # and pushes that wait minutes for a mall's result log get one of their own (redis_conn.worker_queues).
        *[Child("worker-deferred" if queues == (DEFERRED_QUEUE,) else f"worker-{n}",
                [python, "worker.py", "--queues", ",".join(queues)])
          for n, queues in enumerate(worker_queues(app.config["SYNC_WORKERS"]), 1)],
        Child("scheduler", [str(BIN / "rq"), "cron", "tatenpo.schedule", "--url", env["REDIS_URL"], "--path", str(ROOT),
                            "--config", "tatenpo.platform.logs"]),  # its logs like every other process's
        Child("mail", [python, "-m", "tatenpo.orders.smtp_receiver"]),  # 自動受注メール取込 over SMTP
    ]
    children += [Child(name, args) for name, args in demo.extra_processes(python)]

    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for child in children:
            _start(child, env)
        if _wait_for_port(host, port, 60):
            shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
            print(f"\n  Tatenpo is running: http://{shown}:{port}/   (Ctrl-C stops everything)\n", flush=True)
            if _wait_for_port(smtp_shown, smtp_port, 30):
                print(f"  Order mails (SMTP): smtp://{smtp_shown}:{smtp_port} — the malls' mails to the issued addresses\n",
                      flush=True)
            for line in demo.banner_lines():
                print("  " + line, flush=True)
        while not stopping:
            now = time.monotonic()
            # Redis first: the others need it when they start again.
            redis_started = redis_child.started_at if redis_child else None
            for child in ([redis_child] if redis_child else []) + children:
                if stopping:
                    break
                _supervise(child, env, now)
            if redis_child and redis_child.started_at != redis_started and redis_child.process is not None:
                _restart_registered(children)
            time.sleep(0.3)
    finally:
        _stop(children, redis_child.process if redis_child else None, float(env.get("STOP_GRACE_SECONDS", "15")))
    print("tatenpo: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
