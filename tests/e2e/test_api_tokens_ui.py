"""Personal API tokens in the settings dialog, in Chromium: an anonymous visitor is told to
log in; a user creates a token (its secret shown once), a script chats with it and the
conversation appears in the sidebar, the list shows its last use, and revoking it stops it
at once while another token keeps working."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.api_people import PASSWORD, client
from tests.e2e.conftest import Fakes
from tests.e2e.pages import js_constant, open_home, sidebar_items
from tests.e2e.server import MODEL_A_ID, LiveServer

pytestmark = pytest.mark.browser

NO_TOKENS = js_constant("tokens.js", "NO_TOKENS")
NEVER_USED = js_constant("tokens.js", "NEVER_USED")


def _create(page: Page, name: str) -> str:
    page.locator("#token-name").fill(name)
    page.locator("#token-create").click()
    secret = page.locator("#token-secret")
    expect(secret).to_be_visible()
    value = secret.input_value()
    assert value.startswith("ct_") and len(value) > 40
    return value


def _status(server: LiveServer, token: str) -> int:
    with client(server, address="127.0.0.5", Authorization=f"Bearer {token}") as http:
        return http.get("/api/v1/models").status_code


def test_settings_create_list_use_and_revoke_tokens(
    page: Page, fakes: Fakes, app_server: LiveServer
) -> None:
    open_home(page)
    page.locator("#open-settings").click()
    expect(page.locator("#tokens-login")).to_be_visible()
    expect(page.locator("#token-form")).to_have_count(0)
    page.keyboard.press("Escape")

    page.locator("#signup-link").click()
    page.locator("#id_username").fill("token-ui")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")

    page.locator("#open-settings").click()
    items = page.locator("#token-list .token-item")
    expect(page.locator("#token-list .token-empty")).to_have_text(NO_TOKENS)
    laptop = _create(page, "laptop")
    expect(items).to_have_count(1)
    expect(items.first.locator(".token-item-name")).to_have_text("laptop")
    expect(items.first.locator(".token-item-meta")).to_contain_text(laptop[:15] + "…")
    expect(items.first.locator(".token-item-meta")).to_contain_text(NEVER_USED)
    assert laptop[15:] not in items.first.inner_text()  # the list shows the prefix only
    page.keyboard.press("Escape")
    expect(page.locator("#settings-dialog")).to_be_hidden()
    expect(page.locator("#token-secret")).to_have_value("")  # gone with the dialog

    # A script chats with it: the conversation is in this user's sidebar.
    with client(app_server, address="127.0.0.5", Authorization=f"Bearer {laptop}") as http:
        body = {"model": MODEL_A_ID, "messages": [{"role": "user", "content": "From a script"}]}
        assert http.post("/api/v1/chat/completions", json=body).status_code == 200
    page.reload()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")
    expect(sidebar_items(page).locator(".conv-title")).to_have_text(["From a script"])
    assert laptop not in page.content()  # shown once: never again

    page.locator("#open-settings").click()
    expect(page.locator("#token-new")).to_be_hidden()
    expect(items.first.locator(".token-item-meta")).to_contain_text("last used")
    ci = _create(page, "ci")
    expect(items.locator(".token-item-name")).to_have_text(["ci", "laptop"])

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke laptop").click()
    revoked = page.locator("#token-list .token-item.is-revoked")
    expect(revoked.locator(".token-item-name")).to_have_text("laptop")
    expect(revoked.locator(".token-item-meta")).to_contain_text("revoked")
    expect(revoked.locator(".token-revoke")).to_have_count(0)
    assert _status(app_server, laptop) == 401
    assert _status(app_server, ci) == 200
