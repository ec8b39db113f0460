"""Tools in a real browser: a person turns the time server (mcp-server-time over stdio) off
and on again in the settings, asks for the time in Tokyo, sees "Calling `get_current_time`…"
while it runs, then the answer continue under a closed block with labelled arguments and
result, which stays after a reload and on the shared page; the conversation's tools switch;
a private address refused as a user's server; a leading <think> block as "Reasoning"."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.chatui.fake_endpoints import Script
from tests.chatui.fake_tool_endpoint import FakeToolTGI, Step, tool_call
from tests.e2e.conftest import new_context
from tests.e2e.pages import ask, last_answer, open_home, send, wait_idle
from tests.e2e.server import LiveServer
from tests.peers.mcp_peers import time_server_entry

pytestmark = pytest.mark.browser

TOOL_MODEL = "org/tool-model"
PLAIN_MODEL = "org/plain-model"


@pytest.fixture(scope="module")
def tool_fake() -> Iterator[FakeToolTGI]:
    with FakeToolTGI(Script(tokens=["Without", " tools", "."])) as fake:
        yield fake


@pytest.fixture(scope="module")
def tool_server(tool_fake: FakeToolTGI) -> Iterator[LiveServer]:
    models = [
        {
            "name": TOOL_MODEL,
            "displayName": "Tool model",
            "supportsTools": True,
            "parameters": {"max_new_tokens": 64},
            "endpoints": [{"type": "tgi", "url": tool_fake.url}],
        },
        {
            "name": PLAIN_MODEL,
            "displayName": "Plain model",
            "endpoints": [{"type": "tgi", "url": tool_fake.url}],
        },
    ]
    env = {"MCP_SERVERS": json.dumps([time_server_entry()]), "MCP_ALLOW_USER_SERVERS": "true"}
    with LiveServer(models, extra_env=env) as server:
        yield server


@pytest.fixture
def tool_page(browser: Browser, tool_server: LiveServer) -> Iterator[Page]:
    context = new_context(browser, tool_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


def test_the_time_in_tokyo(tool_page: Page, tool_fake: FakeToolTGI) -> None:
    page = tool_page
    open_home(page)
    switch = page.locator("#tools-btn")
    expect(switch).to_be_visible()  # this model has tools
    expect(switch).to_have_attribute("aria-pressed", "true")
    page.locator("#model-picker").select_option(PLAIN_MODEL)
    expect(switch).to_be_hidden()  # this one has none
    page.locator("#model-picker").select_option(TOOL_MODEL)
    expect(switch).to_be_visible()

    page.locator("#open-settings").click()  # the time server: off, then on again
    server = page.locator('.tools-server[data-server="time"]')
    # The first listing starts the stdio server: seconds on a busy machine.
    expect(server.locator("label", has_text="get_current_time")).to_be_visible(timeout=60_000)
    server.locator("legend input").uncheck()
    expect(server.locator("legend input")).not_to_be_checked()
    expect(switch).to_contain_text("Tools (2)")  # the built-ins only
    server.locator("legend input").check()
    expect(switch).to_contain_text("Tools (4)")

    form = page.locator(".tools-add")  # a user's server on a private address is refused
    form.locator('[name="name"]').fill("mine")
    form.locator('[name="url"]').fill("http://127.0.0.1:9/mcp")
    form.locator("button").click()
    expect(page.locator("#notice")).to_contain_text("not allowed")
    expect(page.locator('.tools-server[data-server="mine"]')).to_have_count(0)
    page.keyboard.press("Escape")

    arguments = {"timezone": "Asia/Tokyo"}
    tool_fake.play(
        Step(calls=[tool_call("get_current_time", arguments)]),
        Step(text=["In", " Tokyo", " it", " is", " evening", "."]),
    )
    send(page, "What time is it in Tokyo?")
    running = page.locator(".msg-assistant .msg-tool-running")
    expect(running).to_have_text("Calling get_current_time…")
    # The call starts the stdio server: seconds on a busy machine.
    expect(last_answer(page)).to_have_text("In Tokyo it is evening.", timeout=60_000)
    expect(running).to_have_count(0)
    block = page.locator(".msg-assistant details.msg-tool")
    expect(block.locator("summary")).to_contain_text("Tool: get_current_time")
    assert block.get_attribute("open") is None  # closed until clicked
    block.locator("summary").click()
    expect(block.locator(".msg-tool-label")).to_have_text(["Arguments", "Result"])
    expect(block.locator(".msg-tool-arguments")).to_contain_text('"timezone": "Asia/Tokyo"')
    expect(block.locator(".msg-tool-result")).to_contain_text("+09:00")
    sent = tool_fake.chat_requests[-1]["messages"]
    assert sent[-1]["role"] == "tool" and "Asia/Tokyo" in sent[-1]["content"]

    page.reload()  # stored in the message tree, not only in the page
    expect(page.locator(".msg-assistant details.msg-tool summary")).to_contain_text(
        "get_current_time"
    )
    page.locator("#open-settings").click()  # and on the shared snapshot
    page.locator("#settings-share").click()
    share_url = page.locator("#share-url")
    expect(share_url).to_be_visible()
    page.goto(share_url.input_value())
    shared = page.locator(".msg-assistant .msg-tool")
    shared.locator("summary").click()
    expect(shared.locator(".msg-tool-result")).to_contain_text("Asia/Tokyo")


def test_the_tools_switch_turns_them_off_here(tool_page: Page, tool_fake: FakeToolTGI) -> None:
    open_home(tool_page)
    switch = tool_page.locator("#tools-btn")
    switch.click()
    expect(switch).to_have_attribute("aria-pressed", "false")
    num_chat = len(tool_fake.chat_requests)
    expect(ask(tool_page, "Hello")).to_have_text("Without tools.")
    assert len(tool_fake.chat_requests) == num_chat  # no tools were offered
    expect(switch).to_have_attribute("aria-pressed", "false")  # kept for this conversation
    tool_page.reload()
    expect(tool_page.locator("#tools-btn")).to_have_attribute("aria-pressed", "false")
    wait_idle(tool_page)


def test_reasoning_shows_as_a_closed_block(tool_page: Page, tool_fake: FakeToolTGI) -> None:
    tool_fake.script = Script(
        tokens=["<think>", "Twelve", " sevens", "</think>", "It", " is", " 84"]
    )
    open_home(tool_page)
    tool_page.locator("#tools-btn").click()  # the plain generation route
    ask(tool_page, "Think, then answer")
    reasoning = last_answer(tool_page).locator(".msg-reasoning")
    expect(reasoning.locator("summary")).to_have_text(re.compile(r"^Reasoned for [\d.]+ s$"))
    assert reasoning.get_attribute("open") is None
    expect(last_answer(tool_page).locator(".msg-answer")).to_have_text("It is 84")
    reasoning.locator("summary").click()
    expect(reasoning.locator(".msg-reasoning-text")).to_have_text("Twelve sevens")
    expect(tool_page.locator(".msg-assistant .msg-tool")).to_have_count(0)
