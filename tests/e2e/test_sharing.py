"""Sharing a snapshot with another visitor, and each visitor seeing only their own chats."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Fakes, new_context
from tests.e2e.pages import (
    ask,
    conversation_id,
    js_constant,
    last_answer,
    open_home,
    sidebar_items,
    user_bubbles,
    wait_idle,
)
from tests.e2e.server import MODEL_A_NAME, LiveServer

pytestmark = pytest.mark.browser

NO_CONVERSATIONS = js_constant("sidebar.js", "NO_CONVERSATIONS")


def test_share_link_opens_read_only_and_can_be_continued(
    page: Page, fakes: Fakes, browser: Browser, app_server: LiveServer
) -> None:
    open_home(page)
    ask(page, "Something worth sharing")
    original = conversation_id(page)

    page.locator("#open-settings").click()
    page.locator("#settings-share").click()
    share_url = page.locator("#share-url")
    expect(share_url).to_be_visible()
    url = share_url.input_value()
    assert url.startswith(app_server.url + "/r/")
    assert page.evaluate("navigator.clipboard.readText()") == url

    other = new_context(browser, app_server)
    try:
        visitor = other.new_page()
        visitor.goto(url)
        expect(visitor.locator(".msg-user .msg-bubble")).to_have_text(["Something worth sharing"])
        expect(visitor.locator(".msg-assistant .msg-body")).to_have_text(["Hello! How can I help?"])
        expect(visitor.locator(".msg-assistant .msg-model")).to_have_text([MODEL_A_NAME])
        expect(visitor.locator("#prompt")).to_have_count(0)

        visitor.locator("#continue-shared").click()
        expect(visitor.locator("#app")).to_have_attribute("data-ready", "true")
        copy = conversation_id(visitor)
        assert copy != original
        expect(user_bubbles(visitor)).to_have_text(["Something worth sharing"])
        ask(visitor, "And a follow-up")
        expect(user_bubbles(visitor)).to_have_text(["Something worth sharing", "And a follow-up"])
        expect(sidebar_items(visitor)).to_have_count(1)
    finally:
        other.close()

    page.reload()
    expect(user_bubbles(page)).to_have_text(["Something worth sharing"])


def test_another_visitor_sees_none_of_my_conversations(
    page: Page, fakes: Fakes, browser: Browser, app_server: LiveServer
) -> None:
    open_home(page)
    ask(page, "My private question")
    mine = conversation_id(page)
    expect(sidebar_items(page)).to_have_count(1)

    other = new_context(browser, app_server)
    try:
        stranger = other.new_page()
        open_home(stranger)
        expect(stranger.locator("#conv-list .conv-empty")).to_have_text(NO_CONVERSATIONS)
        expect(sidebar_items(stranger)).to_have_count(0)
        response = stranger.goto(f"/conversation/{mine}")
        assert response is not None and response.status == 404
        api = stranger.request.get(f"/api/conversations/{mine}")
        assert api.status == 404
    finally:
        other.close()

    expect(last_answer(page)).to_have_text("Hello! How can I help?")


def test_share_keeps_the_branch_on_screen_and_shows_its_versions(
    page: Page, fakes: Fakes, browser: Browser, app_server: LiveServer
) -> None:
    open_home(page)
    ask(page, "First version")
    page.locator(".msg-user .msg-edit").click()
    page.locator(".edit-form textarea").fill("Second version")
    page.locator(".edit-form .edit-save").click()
    expect(user_bubbles(page)).to_have_text(["Second version"])
    wait_idle(page)
    page.locator(".msg-user .branch-prev").click()
    expect(user_bubbles(page)).to_have_text(["First version"])

    page.locator("#share-btn").click()
    expect(page.locator("#notice")).to_contain_text("/r/")
    url = page.evaluate("navigator.clipboard.readText()")

    other = new_context(browser, app_server)
    try:
        visitor = other.new_page()
        visitor.goto(url)
        expect(visitor.locator(".msg-user .msg-bubble")).to_have_text(["First version"])
        expect(visitor.locator(".msg-user .branch-count")).to_have_text("1/2")
        expect(visitor.locator(".msg-assistant .branch-switcher")).to_have_count(0)
        visitor.locator(".msg-user .branch-next").click()
        expect(visitor.locator(".msg-user .msg-bubble")).to_have_text(["Second version"])
        expect(visitor.locator(".msg-user .branch-count")).to_have_text("2/2")
        expect(visitor.locator(".msg-user .branch-next")).to_be_disabled()
    finally:
        other.close()
