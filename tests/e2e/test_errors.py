"""A failing model server: a readable error in the conversation, the question kept, Retry."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from chatui.endpoints import ERR_SERVER
from tests.chatui.fake_endpoints import TGI_GENERATION_ERROR, Script
from tests.e2e.conftest import Fakes
from tests.e2e.pages import answers, last_answer, open_home, send, user_bubbles, wait_idle

pytestmark = pytest.mark.browser


def test_endpoint_error_shows_inline_and_retry_answers(page: Page, fakes: Fakes) -> None:
    fakes.a.queue(Script(fail="status", status=500))
    open_home(page)
    send(page, "Will this work?")
    wait_idle(page)

    error = answers(page).last.locator(".msg-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(ERR_SERVER.format(status=500, detail=TGI_GENERATION_ERROR))
    expect(user_bubbles(page)).to_have_text(["Will this work?"])

    error.locator(".retry-btn").click()
    wait_idle(page)

    expect(last_answer(page)).to_have_text("Hello! How can I help?")
    expect(page.locator("#messages .msg-error")).to_have_count(0)
    expect(user_bubbles(page)).to_have_text(["Will this work?"])
    assert len(fakes.a.generation_requests) == 2


def test_error_mid_stream_keeps_the_partial_text(page: Page, fakes: Fakes) -> None:
    fakes.a.queue(Script(tokens=["Partial", " text", " here"], fail="error_event", fail_after=2))
    open_home(page)
    send(page, "Start and fail")
    wait_idle(page)

    expect(answers(page).last.locator(".msg-error")).to_be_visible()
    expect(last_answer(page)).to_have_text("Partial text")
