"""Titles as a user sees them: shown while the first answer is still written, a clean cut of the
first sentence when no task model summarises, taken from the first message even when its answer
failed, and renewed when the first message is edited."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from chatui.titles import ELLIPSIS
from tests.chatui.fake_endpoints import Script
from tests.e2e.conftest import Fakes
from tests.e2e.pages import open_home, send, sidebar_items, user_bubbles, wait_idle

pytestmark = pytest.mark.browser

LONG_QUESTION = "Tell me everything you know about the long history of the Roman Empire"
LONG_TITLE = "Tell me everything you know about the long" + ELLIPSIS


def test_titles_come_early_from_the_first_message_and_follow_its_edit(
    page: Page, fakes: Fakes
) -> None:
    fakes.a.queue(Script(tokens=[f"w{i} " for i in range(12)], delay=0.2))
    open_home(page)
    send(page, "What is 1234*5678? Use the long method.")
    title = page.locator("#conv-title")
    expect(title).to_have_text("What is 1234*5678?")
    # The title is there while the answer is still being written.
    expect(page.locator(".msg-assistant.is-generating")).to_have_count(1)
    wait_idle(page)

    page.locator("#new-chat").click()
    send(page, LONG_QUESTION)
    expect(title).to_have_text(LONG_TITLE)
    expect(sidebar_items(page).first.locator(".conv-title")).to_have_text(LONG_TITLE)
    wait_idle(page)

    page.locator("#new-chat").click()
    fakes.a.queue(Script(fail="status", status=500))
    send(page, "Why is the sky blue?")
    wait_idle(page)
    expect(page.locator(".msg-assistant .msg-error")).to_be_visible()
    send(page, "And now?")
    wait_idle(page)
    expect(title).to_have_text("Why is the sky blue?")

    page.locator(".msg-user .msg-edit").first.click()
    page.locator(".edit-form textarea").fill("How do rainbows form? Briefly.")
    page.locator(".edit-form .edit-save").click()
    expect(user_bubbles(page)).to_have_text(["How do rainbows form? Briefly."])
    wait_idle(page)
    expect(title).to_have_text("How do rainbows form?")
    expect(sidebar_items(page).first.locator(".conv-title")).to_have_text("How do rainbows form?")
