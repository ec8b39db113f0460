"""What a user does on the chat page, as small functions over a Playwright `Page`.

Selectors live here so the tests read as behaviour. Waits use Playwright's auto-retrying
`expect`, never sleeps: a step is done when the page shows it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

CONVERSATION_URL = re.compile(r"/conversation/[0-9a-f-]{36}$")
STATIC = Path(__file__).resolve().parents[2] / "static" / "chatui"


def js_constant(module: str, name: str) -> str:
    """A user-facing string exported by one of the page's modules (`export const NAME = "..."`)."""
    source = (STATIC / module).read_text(encoding="utf-8")
    match = re.search(rf'^export const {name} = "((?:[^"\\]|\\.)*)";$', source, re.MULTILINE)
    if match is None:
        raise LookupError(f"{module} exports no string constant {name}")
    return json.loads(f'"{match.group(1)}"')


def open_home(page: Page, path: str = "/") -> None:
    page.goto(path)
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")


def send(page: Page, text: str) -> None:
    """Types into the composer, presses Enter, waits until the server has stored the message."""
    count = user_bubbles(page).count()
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")
    expect(user_bubbles(page)).to_have_count(count + 1)


def wait_idle(page: Page) -> None:
    """Waits until no answer is being written (the Stop button is gone)."""
    expect(page.locator("#stop-btn")).to_be_hidden()
    expect(page.locator(".msg-assistant.is-generating")).to_have_count(0)
    expect(page.locator("#send-btn")).to_be_visible()


def ask(page: Page, text: str) -> Locator:
    """Sends `text`, waits for the whole answer, returns the answer's body."""
    send(page, text)
    wait_idle(page)
    return last_answer(page)


def answers(page: Page) -> Locator:
    return page.locator("#messages .msg-assistant")


def last_answer(page: Page) -> Locator:
    return answers(page).last.locator(".msg-body")


def user_bubbles(page: Page) -> Locator:
    return page.locator("#messages .msg-user .msg-bubble")


def sidebar_items(page: Page) -> Locator:
    return page.locator("#conv-list .conv-item")


def conversation_id(page: Page) -> str:
    expect(page).to_have_url(CONVERSATION_URL)
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def observe_growth(locator: Locator, *, until: Locator, limit_s: float = 30.0) -> list[str]:
    """The distinct texts `locator` showed while `until` was visible (the answer streaming)."""
    seen: list[str] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        streaming = until.is_visible()
        text = locator.inner_text() if locator.count() else ""
        if text.strip() and (not seen or text != seen[-1]):
            seen.append(text)
        if not streaming and seen:
            break
        locator.page.wait_for_timeout(30)
    return seen
