"""A deployment with a single model, a staff account and the admin, in a real browser: the
model's name and link instead of a dead picker, the sign-up form's password errors where they
belong, the staff's link to the admin, and admin pages that read well (one "Chat" section, the
endpoints' `/info` as rows, no request for a missing /favicon.ico)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from bench.processes import PROJECT_ROOT, VENV_BIN
from tests.chatui.fake_endpoints import FakeTGI
from tests.e2e.conftest import visitor_page
from tests.e2e.pages import ask, open_home
from tests.e2e.server import LiveServer

pytestmark = pytest.mark.browser

ONLY_NAME = "Only Model"
ONLY_URL = "https://example.org/only-model"
STAFF, STAFF_PASSWORD = "boss", "staff-Pass-2026"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with FakeTGI() as fake:
        models = [
            {
                "name": "org/only-model",
                "displayName": ONLY_NAME,
                "websiteUrl": ONLY_URL,
                "parameters": {"max_new_tokens": 32},
                "endpoints": [{"type": "tgi", "url": fake.url}],
            }
        ]
        with LiveServer(models) as live:
            env = live.env() | {"DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD}
            command = ["manage.py", "createsuperuser", "--noinput", "--username", STAFF]
            subprocess.run(
                [str(VENV_BIN / "python"), *command, "--email", "boss@example.org"],
                cwd=PROJECT_ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            yield live


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with visitor_page(browser, server) as page:
        yield page


def field_errors(page: Page, field_id: str):
    return page.locator(".field", has=page.locator(f"#{field_id}")).locator(".field-errors")


def sign_up(page: Page, password1: str, password2: str) -> None:
    page.goto("/signup")
    page.locator("#id_username").fill("newcomer")
    page.locator("#id_password1").fill(password1)
    page.locator("#id_password2").fill(password2)
    page.locator("form button[type=submit]").click()


def test_single_model_signup_errors_staff_link_and_admin(page: Page) -> None:
    sign_up(page, "abc", "abc")
    expect(field_errors(page, "id_password1")).to_contain_text("too short")
    expect(field_errors(page, "id_password2")).to_have_count(0)
    sign_up(page, "a-Long-pw-77", "b-Long-pw-77")
    expect(field_errors(page, "id_password2")).to_be_visible()
    expect(field_errors(page, "id_password1")).to_have_count(0)

    open_home(page)
    expect(page.locator("#model-picker")).to_be_hidden()
    expect(page.locator("#model-name")).to_have_text(ONLY_NAME)
    expect(page.locator("#model-link")).to_have_attribute("href", ONLY_URL)
    expect(page.locator("#admin-link")).to_have_count(0)
    ask(page, "Hello there")
    expect(page.locator("#model-select")).to_be_hidden()

    page.goto("/login")
    page.locator("#id_username").fill(STAFF)
    page.locator("#id_password").fill(STAFF_PASSWORD)
    page.locator("form button[type=submit]").click()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    home = page.url.rstrip("/")
    page.locator("#admin-link").click()
    expect(page).to_have_url(home + "/admin/")
    expect(page.locator("caption").first).to_be_visible()  # the index, not the page before
    captions = [text.strip().lower() for text in page.locator("caption").all_inner_texts()]
    assert captions.count("chat") == 1, captions

    page.goto("/admin/models/")
    info = page.locator(".endpoint-info").first
    expect(info.locator("th", has_text="model_id")).to_have_count(1)
    expect(page.locator(".endpoint-up")).to_have_count(1)
    assert "{'" not in page.locator("#models-table").inner_text()
    assert missing == [], missing
