"""`make run`'s launcher: everything comes up (healthz green), a process that dies is started again (the
embedded Redis too, while the web keeps saving), its files are the owner's only, and Ctrl-C leaves no process
behind."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
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


def _left_running(processes, timeout: float) -> list[str]:
    """The command lines of `processes` still running after waiting up to `timeout` s for them to end; those
    that would not are killed. A zombie has ended: only its exit status waits to be collected, and an orphan's
    parent here may be a container's first process that never collects it."""
    def ended(process: psutil.Process) -> bool:
        try:
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    _gone, alive = psutil.wait_procs(list(processes), timeout=timeout)
    running = []
    for process in alive:
        if ended(process):
            continue
        try:
            running.append(" ".join(process.cmdline()))
            process.kill()
        except psutil.NoSuchProcess:
            pass
    return running


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
    assert _left_running(children.values(), timeout=10) == []
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
    assert _left_running(children, timeout=20) == []


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
        first_seen: dict[int, float] = {}
        while job_process is None and time.monotonic() < deadline:
            for process in _descendants(launcher.pid):
                seen[process.pid] = process
                try:
                    # The job runs in a process forked from the worker (same command line, worker as parent).
                    if "worker.py" in " ".join(process.cmdline()) and "worker.py" in " ".join(process.parent().cmdline()):
                        # Another worker's quick job (the sweep) ends within a second; ours sleeps for minutes.
                        if time.monotonic() - first_seen.setdefault(process.pid, time.monotonic()) > 1.5:
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
    assert _left_running(seen.values(), timeout=10) == []


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


# --- supervision: a child that dies is started again; only Ctrl-C stops everything -------------------------


class Running:
    """`make run` in a temporary instance folder, its console captured, for the supervision tests."""

    def __init__(self, tmp_path: Path, **settings: str) -> None:
        self.port = _free_port()
        self.sandbox_port = _free_port()
        self.instance = tmp_path / "instance"
        env = dict(os.environ)
        for name in ("REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL", "CREDENTIAL_KEY", "SECRET_KEY",
                     "TATENPO_LOG_DIR", "REDIS_SOCKET_TIMEOUT_SECONDS"):
            env.pop(name, None)
        env.update(TATENPO_INSTANCE=str(self.instance), PORT=str(self.port), WEB_WORKERS="1",
                   SANDBOX_HTTP_PORT=str(self.sandbox_port), SANDBOX_FTP_PORT=str(_free_port()),
                   SANDBOX_SFTP_PORT=str(_free_port()), ORDER_SMTP_PORT=str(_free_port()),
                   STOP_GRACE_SECONDS="2", **settings)
        self.console = tmp_path / "console.txt"
        self._out = self.console.open("w")
        self.launcher = subprocess.Popen([sys.executable, "-m", "tatenpo.platform.launcher"], cwd=ROOT, env=env,
                                         stdout=self._out, stderr=subprocess.STDOUT, text=True)
        self.seen: dict[int, psutil.Process] = {}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def processes(self, word: str) -> list[psutil.Process]:
        """The launcher's descendants whose command line has `word` (remembered, to check none is left)."""
        found = []
        for process in _descendants(self.launcher.pid):
            self.seen[process.pid] = process
            try:
                if word in " ".join(process.cmdline()):
                    found.append(process)
            except psutil.Error:
                pass
        return found

    def child(self, word: str) -> psutil.Process | None:
        """The launcher's own child whose command line has `word` (the first, when several have)."""
        found = [p for p in self.processes(word) if _parent_pid(p) == self.launcher.pid]
        return found[0] if found else None

    def healthy(self) -> bool:
        assert self.launcher.poll() is None, self.console.read_text()
        try:
            answer = requests.get(self.url("/healthz"), timeout=5)
        except requests.RequestException as exc:
            self.last_health = repr(exc)
            return False
        self.last_health = answer.text
        return answer.status_code == 200

    def stop(self) -> None:
        """Ctrl-C: the launcher ends with 0 and no process it started is left."""
        self.processes("")
        if self.launcher.poll() is None:
            _stop(self.launcher, 60)
        self._out.close()
        assert _left_running(self.seen.values(), timeout=10) == []
        assert self.launcher.returncode == 0, self.console.read_text()


def _parent_pid(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except psutil.Error:
        return None


def _wait(condition, what: str, timeout: float = 90, detail=None):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + (f": {detail()}" if detail else "")
        time.sleep(0.2)


def test_a_worker_killed_outright_is_started_again_and_the_console_stays_readable(tmp_path):
    leftover = tmp_path / "instance" / "old-export.csv"  # written by an older version, readable by all
    leftover.parent.mkdir(mode=0o755)
    leftover.write_text("code,stock\n")
    leftover.chmod(0o644)
    run = Running(tmp_path)
    try:
        _wait(run.healthy, "healthz")
        worker = _wait(lambda: run.child("worker.py"), "a worker")
        command = " ".join(worker.cmdline())  # there may be several workers: this one's queues
        worker.kill()  # kill -9
        worker.wait(10)
        _wait(lambda: (w := run.child(command)) and w.pid != worker.pid, "a new worker for the same queues")
        _wait(run.healthy, "healthz after the restart")
        _wait(lambda: "starting it again" in run.console.read_text(), "the restart on the console")
    finally:
        run.stop()
    console = run.console.read_text()
    assert f"http://127.0.0.1:{run.port}/" in console
    assert not [line for line in console.splitlines() if line.startswith("{")], console  # no JSON on the console
    worker_log = (run.instance / "logs").glob("worker*.log")
    assert any('"logger": "rq.worker"' in path.read_text() for path in worker_log)  # the full log is in the files
    assert stat.S_IMODE(leftover.stat().st_mode) == 0o600


def test_a_save_while_redis_is_away_is_quick_and_pushed_once_redis_is_back(tmp_path):
    from cryptography.fernet import Fernet  # noqa: F401 - the instance's own key is read below

    from tatenpo import create_app
    from tatenpo.platform.extensions import db

    from .conftest import SandboxMalls
    from .factories import Factory

    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "config.py").write_text("SYNC_TICK_SECONDS = 1\n")
    run = Running(tmp_path, SYNC_INTERVAL_SECONDS="10")
    try:
        _wait(run.healthy, "healthz")
        app = create_app({
            "TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(run.instance / "tatenpo.db"),
            "REDIS_URL": "unix://" + str(run.instance / "redis.sock"), "SECRET_KEY": "test-secret",
            "CREDENTIAL_KEY": (run.instance / "credential.key").read_text().strip(),
        })
        mall = SandboxMalls(f"http://127.0.0.1:{run.sandbox_port}", 0, None)
        remote = mall.create_store("rakuten", items=1)
        item = mall.items(remote["id"])[0]
        make = Factory(app)
        make.user(email="owner@example.jp", password="correct horse battery", role="admin")
        store = make.store(mall="rakuten", endpoint=remote["endpoint"], secrets=remote["credentials"],
                           immediate_sync=True)
        make.application(malls=("rakuten",))
        product = make.product(on_hand=item["quantity"])
        make.listing(store, product, item_code=item["code"], variant_code=item["variant"], code=item["sku"])
        with app.app_context():
            db.engine.dispose()
        target = item["quantity"] + 7

        browser = requests.Session()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', browser.get(run.url("/login"), timeout=10).text)[1]
        browser.post(run.url("/login"), data={"email": "owner@example.jp", "password": "correct horse battery",
                                              "csrf_token": token}, timeout=10)
        page = browser.get(run.url(f"/products/{product.id}"), timeout=10).text
        token = re.search(r'"X-CSRFToken": "([^"]+)"', page)[1]

        redis = _wait(lambda: run.child("redis-server"), "the embedded redis")
        redis.suspend()  # Redis hangs: the save must not wait for it (today's timeout: 10 s)
        started = time.monotonic()
        saved = browser.post(run.url(f"/products/{product.id}/stock"), data={"on_hand": str(target)},
                             headers={"HX-Request": "true", "X-CSRFToken": token}, timeout=30)
        took = time.monotonic() - started
        assert saved.status_code == 200, saved.text
        assert took < 5, took
        notice = json.loads(saved.headers["HX-Trigger"])["tatenpo-notice"]
        assert "同期は再開後に送信されます" in notice
        redis.kill()  # and dies: the launcher starts it again on its data
        assert mall.stock(remote["id"])[(item["code"], item["variant"])] == item["quantity"]  # nothing pushed yet
        _wait(lambda: (r := run.child("redis-server")) and r.pid != redis.pid, "a new embedded redis")
        _wait(lambda: mall.stock(remote["id"])[(item["code"], item["variant"])] == target, "the push", timeout=120)
        _wait(run.healthy, "healthz after the outage", detail=lambda: run.last_health)
        readable = [str(p) for p in run.instance.rglob("*") if stat.S_IMODE(p.lstat().st_mode) & 0o077
                    and not p.is_symlink()]
        assert readable == []  # the database, its -wal/-shm, logs, keys, the sandbox's state: owner only
    finally:
        run.stop()
