"""Browser-test fixtures: two fake TGI servers, one daphne process serving the app against them,
and Debian's Chromium driven by Playwright's sync API (never a downloaded browser).

The fakes and the server live for the whole session (starting daphne costs seconds); each test
gets fresh scripts on the fakes and a fresh browser context, which is a fresh anonymous visitor.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.chatui.fake_endpoints import FakeTGI, Script
from tests.e2e.oidc_stack import OidcStack
from tests.e2e.server import LiveServer, models_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
FAILURES = Path(tempfile.gettempdir()) / "chatui-e2e-failures"
DEFAULT_TOKENS = ("Hello", "!", " How", " can", " I", " help", "?")


@dataclass
class Fakes:
    """The fake endpoint of each model (A: the default model, B: the second one)."""

    a: FakeTGI
    b: FakeTGI

    def reset(self) -> None:
        for fake in (self.a, self.b):
            fake.script = Script(tokens=DEFAULT_TOKENS, delay=0.01)
            # NOTE: FakeTGI has no public way to drop queued scripts; a failed test may leave
            # some behind, and they must not leak into the next test.
            with fake._lock:
                fake._scripts.clear()
            fake.requests.clear()
            fake.disconnected.clear()


@pytest.fixture(scope="session")
def fakes_session() -> Iterator[Fakes]:
    with FakeTGI() as a, FakeTGI(model_id="test/second-model") as b:
        yield Fakes(a, b)


@pytest.fixture
def fakes(fakes_session: Fakes) -> Fakes:
    fakes_session.reset()
    return fakes_session


@pytest.fixture(scope="session")
def app_server(fakes_session: Fakes) -> Iterator[LiveServer]:
    server = LiveServer(models_config(fakes_session.a.url, fakes_session.b.url))
    with server:
        yield server


@pytest.fixture(scope="session")
def oidc_stack(fakes_session: Fakes) -> Iterator[OidcStack]:
    """The app logging in through a real OpenID provider (tests/e2e/oidc_stack.py)."""
    with OidcStack(fakes_session.a.url) as stack:
        yield stack


# NOTE: Playwright's sync API keeps an event loop marked as running in this thread while it is
# started; async tests and Django's ORM refuse to run then. So the browser lives per module and
# is gone before the rest of the suite runs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browsers)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_context(browser: Browser, server: LiveServer, **kwargs) -> BrowserContext:
    """A fresh visitor (own cookies), clipboard allowed so copy buttons work headless."""
    options = {"viewport": DESKTOP, "base_url": server.url, "color_scheme": "light"} | kwargs
    context = browser.new_context(**options)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    context.set_default_timeout(15_000)
    return context


@contextmanager
def visitor_page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    """A fresh visitor's tab on a module's own `server`; uncaught errors and anything the
    Content-Security-Policy refused fail the test."""
    context = new_context(browser, server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def context(browser: Browser, app_server: LiveServer) -> Iterator[BrowserContext]:
    context = new_context(browser, app_server)
    yield context
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(
    request: pytest.FixtureRequest, context: BrowserContext, fakes: Fakes, app_server: LiveServer
) -> Iterator[Page]:
    """A tab of a fresh visitor; on failure its screenshot, HTML and the server log are kept.
    Uncaught errors and anything the Content-Security-Policy refused fail the test."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    if request.node.stash.get(FAILED, False):
        FAILURES.mkdir(parents=True, exist_ok=True)
        name = request.node.name
        page.screenshot(path=FAILURES / f"{name}.png")
        (FAILURES / f"{name}.html").write_text(page.content())
        (FAILURES / f"{name}.log").write_text(app_server.log())
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
