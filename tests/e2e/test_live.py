"""One conversation open in two tabs, and a socket that drops: both stay in step."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from tests.chatui.fake_endpoints import Script
from tests.e2e.conftest import Fakes
from tests.e2e.pages import (
    conversation_id,
    js_constant,
    last_answer,
    observe_growth,
    open_home,
    send,
    user_bubbles,
    wait_idle,
)

pytestmark = pytest.mark.browser

RECONNECTING_NOTICE = js_constant("chat.js", "RECONNECTING_NOTICE")

TOKENS = [f"part{i} " for i in range(30)]


def test_second_tab_follows_the_answer_and_can_stop_it(
    page: Page, context: BrowserContext, fakes: Fakes
) -> None:
    fakes.a.script = Script(tokens=TOKENS, delay=0.12)
    open_home(page)
    send(page, "Shared between tabs")
    conv_id = conversation_id(page)
    expect(last_answer(page)).to_contain_text("part1")

    other = context.new_page()
    open_home(other, f"/conversation/{conv_id}")
    expect(user_bubbles(other)).to_have_text(["Shared between tabs"])
    expect(other.locator("#stop-btn")).to_be_visible()
    seen = observe_growth(last_answer(other), until=other.locator("#stop-btn"), limit_s=1.5)
    assert len(seen) >= 2, seen

    other.locator("#stop-btn").click()
    wait_idle(other)
    wait_idle(page)
    assert fakes.a.disconnected.wait(10)
    expect(last_answer(page)).to_have_text(last_answer(other).inner_text())
    other.close()


def test_socket_reconnects_after_the_connection_drops(page: Page, fakes: Fakes) -> None:
    sockets: list[WebSocketRoute] = []

    def through(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/conversations/"), through)
    fakes.a.script = Script(tokens=TOKENS, delay=0.1)
    open_home(page)
    send(page, "Survive a dropped connection")
    expect(last_answer(page)).to_contain_text("part1")

    sockets[-1].close(code=4000, reason="dropped")
    expect(page.locator("#notice")).to_have_text(RECONNECTING_NOTICE)
    expect(page.locator("#notice")).to_be_hidden()
    assert len(sockets) >= 2

    wait_idle(page)
    expect(last_answer(page)).to_have_text("".join(TOKENS).strip())
    expect(user_bubbles(page)).to_have_text(["Survive a dropped connection"])
