"""Answers that belong to the server, in a real browser: two tabs on one conversation share the
stream, closing one does not cut the other, a reload mid-answer picks the stream up where it
was, and the sidebar marks the conversation while its answer is being written."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.chatui.fake_endpoints import Script
from tests.e2e.conftest import Fakes
from tests.e2e.pages import (
    conversation_id,
    last_answer,
    observe_growth,
    open_home,
    send,
    sidebar_items,
    wait_idle,
)

pytestmark = pytest.mark.browser

STORY = [f"part{i} " for i in range(30)]
FULL = "".join(STORY).strip()
WRITING = re.compile(r"\bis-generating\b")


def test_two_tabs_share_the_stream_and_closing_one_does_not_cut_the_other(
    page: Page, context: BrowserContext, fakes: Fakes
) -> None:
    fakes.a.script = Script(tokens=STORY, delay=0.1)
    sender = context.new_page()
    open_home(sender)
    send(sender, "Tell a long story")
    conv_id = conversation_id(sender)

    open_home(page, f"/conversation/{conv_id}")  # the same visitor's second tab
    expect(last_answer(page)).to_contain_text("part2")
    expect(last_answer(sender)).to_contain_text("part2")
    item = sidebar_items(page).first
    expect(item).to_have_class(WRITING)
    expect(item.locator(".generating-dot")).to_be_visible()

    expect(page.locator("#stop-btn")).to_be_visible()
    sender.close()  # mid-answer
    seen = observe_growth(last_answer(page), until=page.locator("#stop-btn"))

    assert len(seen) >= 2, seen
    wait_idle(page)
    expect(last_answer(page)).to_have_text(FULL)
    expect(item).not_to_have_class(WRITING)
    assert not fakes.a.disconnected.is_set(), "closing a tab stopped the answer"


def test_a_reload_mid_answer_shows_the_text_so_far_then_the_rest(page: Page, fakes: Fakes) -> None:
    fakes.a.script = Script(tokens=STORY, delay=0.2)  # about 5 s left after part5, for the reload
    open_home(page)
    send(page, "Another long story")
    expect(last_answer(page)).to_contain_text("part5")
    before = last_answer(page).inner_text().strip()

    page.reload()
    expect(sidebar_items(page).first).to_have_class(WRITING)
    # The page first shows the stored text; the stop button comes once the socket rejoins.
    expect(page.locator("#stop-btn")).to_be_visible()
    seen = observe_growth(last_answer(page), until=page.locator("#stop-btn"))

    assert seen and seen[0].strip().startswith(before), (before, seen)
    assert len(seen) >= 2, seen  # then it grows, live
    wait_idle(page)
    expect(last_answer(page)).to_have_text(FULL)
    expect(sidebar_items(page).first).not_to_have_class(WRITING)
    assert len(fakes.a.generation_requests) == 1
