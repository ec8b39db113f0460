"""Oversized messages in the browser: too long for an anonymous visitor's limit (an error event),
or over the websocket's 1 MiB (the server closes with 1009): either way the page says why, the
text goes back into the composer, and the next message works."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from chatui.limits import ANONYMOUS_DEFAULTS, MESSAGE_TOO_LONG
from tests.e2e.conftest import Fakes
from tests.e2e.pages import ask, js_constant, open_home, user_bubbles

pytestmark = pytest.mark.browser

MESSAGE_TOO_BIG = js_constant("socket.js", "MESSAGE_TOO_BIG")


def test_an_oversized_message_is_refused_with_the_reason(page: Page, fakes: Fakes) -> None:
    open_home(page)
    assert ask(page, "First").inner_text() == "Hello! How can I help?"
    limit = ANONYMOUS_DEFAULTS.message_length
    for text, reason in (
        ("y" * (limit + 1), MESSAGE_TOO_LONG.format(length=limit + 1, limit=limit)),
        ("z" * (1024 * 1024 + 1), MESSAGE_TOO_BIG),
    ):
        page.locator("#prompt").fill(text)
        page.locator("#prompt").press("Enter")
        expect(page.locator(".msg-loose-error")).to_contain_text(reason)
        expect(page.locator("#prompt")).to_have_value(text)
        expect(user_bubbles(page)).to_have_count(1)
    page.locator("#prompt").fill("")
    assert ask(page, "Short again").inner_text() == "Hello! How can I help?"
    expect(user_bubbles(page)).to_have_text(["First", "Short again"])
