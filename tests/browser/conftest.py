"""Real-browser tests: Tatenpo started the way `make run` starts it (tatenpo.platform.launcher: migrations, gunicorn,
an RQ worker, `rq cron` and the sandbox malls, each a real process on free ports of 127.0.0.1), driven by
Debian's chromium through Playwright. Screenshots of each step go to tests/browser/artifacts/ (git-ignored).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from ..conftest import PASSWORD
from ..live import LiveTatenpo, free_port, start_live  # noqa: F401  (free_port and LiveTatenpo: for the tests)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Console errors (a failed request, a CSP violation, a script error) and uncaught page errors fail the test,
# except these, each known to be harmless. Empty: Tatenpo and the sandbox malls both serve /favicon.ico, the
# one request a browser makes on its own.
HARMLESS_CONSOLE_ERRORS: tuple[re.Pattern[str], ...] = ()

# Two cores are shared by the app's processes, the sandbox and chromium: give pages time before failing.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A fresh installation for the module: empty database, own embedded Redis, own sandbox malls."""
    with start_live(tmp_path_factory.mktemp("live")) as installation:
        yield installation


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
    # A CSP violation, a failed request or a script error is a bug of the page, whatever the test checks.
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
    unexpected = [e for e in errors if not any(harmless.search(e) for harmless in HARMLESS_CONSOLE_ERRORS)]
    assert not unexpected, "the browser console showed errors:\n" + "\n".join(unexpected)


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
    # Leaving a field checks it on the server (htmx, on change); wait until the answers have replaced any
    # message shown before, so the boxes are ticked on a settled page.
    page.locator("#contact_email").blur()
    expect(page.locator("#company-feedback .error, #contact_name-feedback .error, #contact_email-feedback .error")
           ).to_have_count(0)
    for mall in ("楽天市場", "Yahoo!ショッピング"):
        box = page.get_by_label(mall)
        box.check()
        expect(box).to_be_checked()


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
