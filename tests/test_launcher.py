"""`make run`'s launcher: everything comes up (healthz green) and Ctrl-C leaves no process behind."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(launcher: subprocess.Popen, seconds: float) -> None:
    """Ctrl-C, as a person would; kill -9 if it has not stopped in time (after a failed assertion)."""
    launcher.send_signal(signal.SIGINT)
    try:
        launcher.wait(seconds)
    except subprocess.TimeoutExpired:
        launcher.kill()


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_everything_starts_healthy_and_ctrl_c_stops_every_process(tmp_path):
    port = _free_port()
    env = dict(os.environ)
    for name in ("REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL"):
        env.pop(name, None)  # the zero-setup default: SQLite and the embedded Redis
    env.update(
        TATENPO_INSTANCE=str(tmp_path / "instance"),
        PORT=str(port),
        SANDBOX_HTTP_PORT=str(_free_port()), ORDER_SMTP_PORT=str(_free_port()),
        SANDBOX_FTP_PORT=str(_free_port()),
        SYNC_INTERVAL_SECONDS="60",
        WEB_WORKERS="1",
    )
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tatenpo.platform.launcher"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    children: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline:
            for child in _descendants(launcher.pid):
                children[child.pid] = child
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                if health.status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or busy starting
                pass
            assert launcher.poll() is None, launcher.stdout.read()
            time.sleep(0.5)
        assert health is not None and health.status_code == 200, health.text if health is not None else "no answer"
        checks = health.json()["checks"]
        assert checks["worker"]["ok"] and checks["scheduler"]["ok"] and checks["schedule_tick"]["ok"]
        # The first visit is the setup page.
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.url.endswith("/setup") and "初期設定" in page.text
        for child in _descendants(launcher.pid):
            children[child.pid] = child
        assert len(children) >= 4  # redis, web, worker, scheduler (and the sandbox once it exists)

        launcher.send_signal(signal.SIGINT)
        output, _ = launcher.communicate(timeout=60)
        assert launcher.returncode == 0, output
        assert f"http://127.0.0.1:{port}/" in output
    finally:
        if launcher.poll() is None:
            # A failed assertion above: stop the whole tree, not just the launcher.
            _stop(launcher, 30)
            for child in children.values():
                if child.is_running():
                    child.kill()
    gone, alive = psutil.wait_procs(list(children.values()), timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
    assert not (tmp_path / "instance" / "redis.sock").exists() or not _socket_answers(tmp_path / "instance" / "redis.sock")


def test_children_die_with_a_launcher_that_is_killed_outright(tmp_path):
    port = _free_port()
    env = dict(os.environ)
    for name in ("REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL"):
        env.pop(name, None)
    env.update(TATENPO_INSTANCE=str(tmp_path / "instance"), PORT=str(port), WEB_WORKERS="1",
               SANDBOX_HTTP_PORT=str(_free_port()), SANDBOX_FTP_PORT=str(_free_port()),
               ORDER_SMTP_PORT=str(_free_port()))
    launcher = subprocess.Popen([sys.executable, "-m", "tatenpo.platform.launcher"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(children) < 4:
            children = _descendants(launcher.pid)
            time.sleep(0.3)
        assert len(children) >= 4
    finally:
        launcher.kill()
        launcher.wait()
    gone, alive = psutil.wait_procs(children, timeout=20)
    for process in alive:
        process.kill()
    assert alive == [], [p.cmdline() for p in alive]


def test_ctrl_c_also_stops_a_job_that_is_running(tmp_path):
    """RQ runs a job in a process group of its own: stopping must reach it too."""
    from redis import Redis
    from rq import Queue

    port = _free_port()
    env = dict(os.environ)
    for name in ("REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL"):
        env.pop(name, None)
    instance = tmp_path / "instance"
    env.update(TATENPO_INSTANCE=str(instance), PORT=str(port), WEB_WORKERS="1", STOP_GRACE_SECONDS="2",
               SANDBOX_HTTP_PORT=str(_free_port()), SANDBOX_FTP_PORT=str(_free_port()),
               ORDER_SMTP_PORT=str(_free_port()))
    launcher = subprocess.Popen([sys.executable, "-m", "tatenpo.platform.launcher"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + 60
        while not (instance / "redis.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        job = Queue("default", connection=Redis(unix_socket_path=str(instance / "redis.sock"))).enqueue(time.sleep, 300)
        # A worker runs one job at a time: once ours has started, the only job process is ours (the
        # scheduler's quick sweep runs in such a process too, so looking earlier could catch that one).
        while job.get_status(refresh=True) != "started" and time.monotonic() < deadline:
            time.sleep(0.2)
        job_process = None
        while job_process is None and time.monotonic() < deadline:
            for process in _descendants(launcher.pid):
                seen[process.pid] = process
                try:
                    # The job runs in a process forked from the worker (same command line, worker as parent).
                    if "worker.py" in " ".join(process.cmdline()) and "worker.py" in " ".join(process.parent().cmdline()):
                        job_process = process
                except psutil.Error:
                    pass
            time.sleep(0.3)
        assert job_process is not None, "the job never started"
        assert os.getpgid(job_process.pid) != os.getpgid(launcher.pid)
        launcher.send_signal(signal.SIGINT)
        launcher.wait(60)
    finally:
        if launcher.poll() is None:
            _stop(launcher, 60)
    _gone, alive = psutil.wait_procs(list(seen.values()), timeout=10)
    for process in alive:
        process.kill()
    assert alive == [], [p.cmdline() for p in alive]


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False
