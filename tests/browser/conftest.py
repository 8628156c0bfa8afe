"""Real-browser tests: Tatenpo started the way `make run` starts it (tatenpo.platform.launcher: migrations, gunicorn,
an RQ worker, `rq cron` and the sandbox malls, each a real process on free ports of 127.0.0.1), driven by
Debian's chromium through Playwright. Screenshots of each step go to tests/browser/artifacts/ (git-ignored).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from ..conftest import PASSWORD, SandboxMalls

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Two cores are shared by the app's processes, the sandbox and chromium: give pages time before failing.
expect.set_options(timeout=15_000)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _browser_database(folder: Path) -> str:
    """SQLite in the test's folder; on the PostgreSQL run, a database of its own beside the suite's."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return "sqlite:///" + str(folder / "tatenpo.db")
    import psycopg

    base, _, name = url.rpartition("/")
    own = f"{name}_browser"
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{own}"')
    return f"{base}/{own}"


class LiveTatenpo:
    """One running installation: its URL, its sandbox malls, and its shell commands."""

    def __init__(self, url: str, sandbox: SandboxMalls, env: dict, folder: Path, log: Path) -> None:
        self.url = url
        self.sandbox = sandbox
        self.env = env
        self.folder = folder
        self.log = log

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`flask --app app …` against this installation's database and Redis."""
        result = subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "--app", "app", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def flask_json(self, *args: str):
        return json.loads(self.flask(*args, "--json").stdout)


def _wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tatenpo exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A fresh installation for the module: empty database, own embedded Redis, own sandbox malls."""
    folder = tmp_path_factory.mktemp("live")
    port, http_port, ftp_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SANDBOX_URL", "MAIL_SERVER")}
    env.update(
        TATENPO_INSTANCE=str(folder / "instance"),
        DATABASE_URL=_browser_database(folder),
        HOST="127.0.0.1",
        PORT=str(port),
        SANDBOX_HTTP_PORT=str(http_port),
        SANDBOX_FTP_PORT=str(ftp_port),
        SANDBOX_DB=str(folder / "sandbox.db"),
        SANDBOX_FTP_DELAY="0.5",
        SYNC_INTERVAL_SECONDS="10",
        LOG_LEVEL="WARNING",
    )
    log = folder / "tatenpo.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tatenpo.platform.launcher"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    sandbox_url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_for(url + "/login", process, log)
        _wait_for(sandbox_url + "/", process, log)
        # The shell commands of this installation use its Redis too (the launcher's embedded one).
        env["REDIS_URL"] = "unix://" + str(folder / "instance" / "redis.sock")
        yield LiveTatenpo(url, SandboxMalls(sandbox_url, ftp_port, None), env, folder, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets the page fixture know the test failed, to keep a screenshot of where it stopped.
    outcome = yield
    report = outcome.get_result()
    setattr(item, "report_" + report.when, report)


@pytest.fixture
def page(browser, request) -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP")
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    # A CSP violation or a script error is a bug of the page, whatever the test checks.
    page.on("console", lambda message: errors.append(f"{page.url}: {message.text} {message.location}") if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.shot = Screenshots(page, request.node.name)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        try:
            page.shot("failed-here")
        except Exception:  # the page may be gone with the failure; the report says why
            pass
    context.close()
    if errors:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{page.shot.prefix}-console.txt").write_text("\n".join(errors), encoding="utf-8")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


class Screenshots:
    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.prefix = re.sub(r"[^\w-]+", "_", test_name)
        self.count = 0

    def __call__(self, step: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.count += 1
        path = ARTIFACTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def set_up_admin(page: Page, live: LiveTatenpo, email: str = "admin@example.jp") -> None:
    """The first-run screen, as a new user sees it; ends logged in."""
    page.goto(live.url + "/")
    page.wait_for_url(re.compile(r"/setup"))
    page.get_by_label("メールアドレス", exact=False).first.fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#confirm").fill(PASSWORD)
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    # Creating the account hashes its password (slow on purpose): wait until the guide is there.
    page.wait_for_url(re.compile(r"/guide"))


def log_in(page: Page, live: LiveTatenpo, email: str, password: str = PASSWORD) -> None:
    page.goto(live.url + "/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("main form [type=submit]").click()
    page.wait_for_url(lambda url: "/login" not in url)


def log_out(page: Page) -> None:
    page.locator("header form button[type=submit]").click()


def fill_application(page: Page) -> None:
    """The support-center form answered as a shop applying for 楽天市場 and Yahoo!ショッピング."""
    page.locator("#company").fill("株式会社たてんぽ商店")
    page.locator("#contact_name").fill("山田 花子")
    page.locator("#contact_email").fill("hanako@example.jp")
    page.get_by_label("楽天市場").check()
    page.get_by_label("Yahoo!ショッピング").check()


def support_completes_the_first_application(page: Page, live: LiveTatenpo) -> None:
    """A support user (created by script, as support staff are) logs in and marks the waiting one 設定完了."""
    live.flask("create-user", "support@example.jp", "--password", PASSWORD, "--role", "support")
    log_in(page, live, "support@example.jp")
    page.goto(live.url + "/support")
    queue = page.locator("table").first
    expect(queue).to_contain_text("株式会社たてんぽ商店")
    queue.get_by_role("link", name="開く").click()
    page.shot("support-detail")
    page.get_by_role("button", name="設定完了にする").click()
    expect(page.locator(".flash-success")).to_contain_text("設定完了にしました")
    expect(page.locator("h1 .badge")).to_have_text("設定完了")
