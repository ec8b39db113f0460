"""Tool calls and reasoning in a real browser: a model with `"tools": true` calls the calculator,
the page shows the call as a closed block (name, arguments, result) above the answer, it is
still there after a reload and on the shared page; a leading <think> block shows as a closed
"Reasoning" block."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.chatui.fake_endpoints import Script
from tests.chatui.fake_tool_endpoint import FakeToolTGI, tool_call
from tests.e2e.conftest import new_context
from tests.e2e.pages import ask, last_answer, open_home
from tests.e2e.server import LiveServer

pytestmark = pytest.mark.browser

TOOL_MODEL = "org/tool-model"


@pytest.fixture(scope="module")
def tool_fake() -> Iterator[FakeToolTGI]:
    with FakeToolTGI(Script(tokens=["12", " times", " 7", " is", " 84", "."])) as fake:
        yield fake


@pytest.fixture(scope="module")
def tool_server(tool_fake: FakeToolTGI) -> Iterator[LiveServer]:
    models = [
        {
            "name": TOOL_MODEL,
            "displayName": "Tool model",
            "tools": True,
            "parameters": {"max_new_tokens": 64},
            "endpoints": [{"type": "tgi", "url": tool_fake.url}],
        }
    ]
    with LiveServer(models) as server:
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


def test_a_tool_call_shows_as_a_closed_block_and_stays(tool_page: Page, tool_fake) -> None:
    tool_fake.tool_calls = [tool_call("calculator", {"expression": "12 * 7"})]
    tool_fake.script = Script(tokens=["12", " times", " 7", " is", " 84", "."])
    open_home(tool_page)
    answer = ask(tool_page, "What is 12 times 7?")
    expect(answer).to_have_text("12 times 7 is 84.")

    block = tool_page.locator(".msg-assistant .msg-tool")
    expect(block).to_have_count(1)
    expect(block.locator("summary")).to_have_text("Tool: calculator")
    assert block.get_attribute("open") is None  # closed until clicked
    expect(block.locator(".msg-tool-result")).to_be_hidden()
    block.locator("summary").click()
    expect(block.locator(".msg-tool-arguments")).to_contain_text('"expression": "12 * 7"')
    expect(block.locator(".msg-tool-result")).to_have_text("84")

    tool_page.reload()  # stored in the message tree, not only in the page
    expect(tool_page.locator(".msg-assistant .msg-tool summary")).to_have_text("Tool: calculator")

    tool_page.locator("#open-settings").click()  # and on the shared snapshot
    tool_page.locator("#settings-share").click()
    share_url = tool_page.locator("#share-url")
    expect(share_url).to_be_visible()
    tool_page.goto(share_url.input_value())
    shared = tool_page.locator(".msg-assistant .msg-tool")
    expect(shared.locator("summary")).to_have_text("Tool: calculator")
    shared.locator("summary").click()
    expect(shared.locator(".msg-tool-result")).to_have_text("84")


def test_reasoning_shows_as_a_closed_block(tool_page: Page, tool_fake) -> None:
    tool_fake.tool_calls = []
    tool_fake.script = Script(
        tokens=["<think>", "Twelve", " sevens", "</think>", "It", " is", " 84"]
    )
    open_home(tool_page)
    ask(tool_page, "Think, then answer")
    reasoning = last_answer(tool_page).locator(".msg-reasoning")
    expect(reasoning.locator("summary")).to_have_text(re.compile(r"^Reasoned for [\d.]+ s$"))
    assert reasoning.get_attribute("open") is None
    expect(last_answer(tool_page).locator(".msg-answer")).to_have_text("It is 84")
    reasoning.locator("summary").click()
    expect(reasoning.locator(".msg-reasoning-text")).to_have_text("Twelve sevens")
    expect(tool_page.locator(".msg-assistant .msg-tool")).to_have_count(0)
