"""Accounts and data: signup keeps the anonymous chats, logout / login, export, delete all."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Fakes
from tests.e2e.pages import ask, js_constant, open_home, sidebar_items

pytestmark = pytest.mark.browser

NO_CONVERSATIONS = js_constant("sidebar.js", "NO_CONVERSATIONS")
PASSWORD = "a-long-Passphrase-42"


def test_signup_keeps_chats_and_logout_login_round_trip(page: Page, fakes: Fakes) -> None:
    open_home(page)
    ask(page, "Before I had an account")

    page.locator("#signup-link").click()
    page.locator("#id_username").fill("alice")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")
    expect(page.locator(".user-name")).to_have_text("alice")
    expect(sidebar_items(page).locator(".conv-title")).to_have_text(["Before I had an account"])

    page.locator("#logout").click()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")
    expect(page.locator("#login-link")).to_be_visible()
    expect(page.locator("#conv-list .conv-empty")).to_have_text(NO_CONVERSATIONS)

    page.locator("#login-link").click()
    page.locator("#id_username").fill("alice")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")
    expect(sidebar_items(page).locator(".conv-title")).to_have_text(["Before I had an account"])


def test_export_downloads_every_conversation_and_delete_all_empties_the_list(
    page: Page, fakes: Fakes
) -> None:
    open_home(page)
    ask(page, "First chat")
    page.locator("#new-chat").click()
    ask(page, "Second chat")

    page.locator("#open-settings").click()
    with page.expect_download() as download_info:
        page.locator("#export-link").click()
    exported = json.loads(download_info.value.path().read_text(encoding="utf-8"))
    contents = sorted(m["content"] for c in exported["conversations"] for m in c["messages"])
    assert "First chat" in contents and "Second chat" in contents

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#delete-all").click()
    expect(page.locator("#settings-dialog")).to_be_hidden()
    expect(page.locator("#conv-list .conv-empty")).to_have_text(NO_CONVERSATIONS)
    expect(page.locator("#empty-state")).to_be_visible()
    page.reload()
    expect(sidebar_items(page)).to_have_count(0)
