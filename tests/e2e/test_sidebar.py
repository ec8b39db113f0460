"""The conversation list: live titles, the "being written" mark, search, rename, delete."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from chatui.titles import DEFAULT_TITLE, fallback_title
from tests.chatui.fake_endpoints import Script
from tests.e2e.conftest import Fakes
from tests.e2e.pages import ask, js_constant, open_home, send, sidebar_items, wait_idle

pytestmark = pytest.mark.browser

NO_MATCHES = js_constant("sidebar.js", "NO_MATCHES")

QUESTION = "How do tides work on the planet Earth?"


def test_title_updates_live_and_generating_mark_follows_the_answer(
    page: Page, fakes: Fakes
) -> None:
    fakes.a.script = Script(tokens=[f"w{i} " for i in range(12)], delay=0.1)
    open_home(page)
    send(page, QUESTION)

    item = sidebar_items(page).first
    expect(item).to_have_class(re.compile(r"\bis-generating\b"))
    expect(item.locator(".generating-dot")).to_be_visible()
    wait_idle(page)

    title = fallback_title(QUESTION)
    assert title != DEFAULT_TITLE
    expect(item.locator(".conv-title")).to_have_text(title)
    expect(page.locator("#conv-title")).to_have_text(title)
    expect(item.locator(".generating-dot")).to_be_hidden()
    assert page.title().startswith(title)


def test_search_finds_titles_and_message_contents(page: Page, fakes: Fakes) -> None:
    fakes.a.queue(Script(tokens=["Volcanoes erupt magma."]), Script(tokens=["Bread needs yeast."]))
    open_home(page)
    ask(page, "Tell me about volcanoes")
    page.locator("#new-chat").click()
    ask(page, "How to bake bread")
    expect(sidebar_items(page)).to_have_count(2)

    search = page.locator("#conv-search")
    search.fill("yeast")  # only in an answer
    expect(sidebar_items(page)).to_have_count(1)
    expect(sidebar_items(page).locator(".conv-title")).to_have_text(["How to bake bread"])
    search.fill("volcanoes")
    expect(sidebar_items(page).locator(".conv-title")).to_have_text(["Tell me about volcanoes"])
    search.fill("nothing matches this")
    expect(page.locator("#conv-list .conv-empty")).to_have_text(NO_MATCHES)
    search.fill("")
    expect(sidebar_items(page)).to_have_count(2)


def test_rename_inline_and_delete_with_confirmation(page: Page, fakes: Fakes) -> None:
    open_home(page)
    ask(page, "Keep me")
    page.locator("#new-chat").click()
    ask(page, "Delete me")
    expect(sidebar_items(page)).to_have_count(2)

    keep = sidebar_items(page).filter(has_text="Keep me")
    keep.hover()
    keep.locator(".conv-rename").click()
    box = page.locator(".conv-rename-input")
    expect(box).to_be_focused()
    box.fill("Renamed chat")
    box.press("Enter")
    expect(sidebar_items(page).locator(".conv-title")).to_contain_text(["Renamed chat"])

    page.once("dialog", lambda dialog: dialog.accept())
    doomed = sidebar_items(page).filter(has_text="Delete me")
    doomed.hover()
    doomed.locator(".conv-delete").click()
    expect(sidebar_items(page)).to_have_count(1)
    expect(page.locator("#empty-state")).to_be_visible()  # it was the open conversation

    page.reload()
    expect(sidebar_items(page).locator(".conv-title")).to_have_text(["Renamed chat"])
