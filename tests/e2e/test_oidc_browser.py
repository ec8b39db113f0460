"""Single sign-on in Chromium, through the real provider's own login, consent and logout
pages: a visitor chats, logs in (the chat moves to the account), chats again, logs out (the
provider's session ends too), and a second user sees none of the first's conversations; an
account outside the allow-list gets the readable refusal page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from chatui.oidc.policy import NOT_ALLOWED
from tests.e2e.conftest import Fakes, new_context
from tests.e2e.oidc_stack import PASSWORD, OidcStack
from tests.e2e.pages import ask, conversation_id, open_home, sidebar_items

pytestmark = pytest.mark.browser


def sign_in_at_provider(page: Page, login: str) -> None:
    """The provider's development login page (any password), then its consent page."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def log_in_with_sso(page: Page, login: str) -> None:
    page.locator("#login-link").click()
    expect(page.locator("input[name=password]")).to_have_count(0)  # no local passwords
    page.locator("#openid-login").click()
    sign_in_at_provider(page, login)
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")
    expect(page.locator(".user-name")).to_have_text(login.title())  # OPENID_NAME_CLAIM


def test_sso_login_chat_logout_and_a_second_user(
    browser: Browser, oidc_stack: OidcStack, fakes: Fakes
) -> None:
    context = new_context(browser, oidc_stack.app)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    open_home(page)
    ask(page, "Asked before logging in")
    log_in_with_sso(page, "bob")
    expect(sidebar_items(page).locator(".conv-title")).to_have_text(["Asked before logging in"])
    page.locator("#new-chat").click()
    expect(ask(page, "Asked as bob")).to_contain_text("How can I help?")
    bobs = conversation_id(page)

    page.locator("#logout").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(f"{oidc_stack.app.url}/")
    expect(page.locator("#login-link")).to_be_visible()
    expect(sidebar_items(page)).to_have_count(0)

    # The provider's session ended too: it asks who is logging in again.
    log_in_with_sso(page, "alice")
    expect(sidebar_items(page)).to_have_count(0)
    response = page.goto(f"/conversation/{bobs}")
    assert response is not None and response.status == 404
    page.goto("/admin/")  # alice is in the provider's admin group
    expect(page.locator("#site-name")).to_be_visible()
    assert not errors, errors
    context.close()

    outsider = new_context(browser, oidc_stack.app).new_page()
    outsider.goto("/login/oidc")
    sign_in_at_provider(outsider, "mallory")
    expect(outsider.locator("#login-refused")).to_have_text(
        NOT_ALLOWED.format(email="mallory@elsewhere.example")
    )
    expect(outsider.get_by_role("heading", name="Access not allowed")).to_be_visible()
    # The provider still has mallory's session: switching asks it who is logging in anew.
    outsider.locator("#switch-account").click()
    sign_in_at_provider(outsider, "bob")
    expect(outsider.locator(".user-name")).to_have_text("Bob")
    outsider.context.close()
