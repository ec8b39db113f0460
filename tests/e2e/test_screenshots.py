"""The main screens, saved to docs/screenshots/ (and checked to show what they should)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from playwright.sync_api import Browser, Page, expect

from tests.chatui.fake_endpoints import Script
from tests.e2e.conftest import PHONE, Fakes, new_context
from tests.e2e.pages import ask, last_answer, open_home, sidebar_items
from tests.e2e.server import LiveServer

pytestmark = pytest.mark.browser

ANSWER_WITH_CODE = [
    "Quicksort picks a **pivot**, splits the list around it, and sorts each side:\n\n",
    "```python\n",
    "def quicksort(items: list[int]) -> list[int]:\n",
    "    if len(items) <= 1:\n",
    "        return items\n",
    "    pivot, *rest = items\n",
    "    left = [x for x in rest if x < pivot]\n",
    "    right = [x for x in rest if x >= pivot]\n",
    "    return quicksort(left) + [pivot] + quicksort(right)\n",
    "```\n\n",
    "On average it makes $O(n \\log n)$ comparisons; the worst case is\n\n",
    "$$T(n) = T(n-1) + O(n) = O(n^2).$$\n\n",
    "- Choose a random pivot to avoid the worst case.\n",
    "- Small lists are faster with insertion sort.\n",
]
OTHER_CHATS = [
    ("Plan a weekend in Lisbon", ["Day one: Alfama and the castle. Day two: Belém."]),
    ("Why is the sky blue?", ["Rayleigh scattering favours short wavelengths."]),
]


# Anti-aliasing differs by a few pixels between runs; a picture is replaced only when the
# screen really changed, so running the suite leaves docs/ untouched.
MAX_CHANGED_PIXELS = 0.001


def shoot(page: Page, directory: Path, name: str) -> None:
    page.mouse.move(0, 0)  # no hover effects in the picture
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("document.fonts.ready.then(() => true)")
    png = page.screenshot(animations="disabled", caret="hide")
    target = directory / f"{name}.png"
    if not target.exists() or _changed(target.read_bytes(), png):
        target.write_bytes(png)


def _changed(old: bytes, new: bytes) -> bool:
    before = Image.open(io.BytesIO(old)).convert("RGB")
    after = Image.open(io.BytesIO(new)).convert("RGB")
    if before.size != after.size:
        return True
    diff = ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v else 0)
    changed = sum(diff.histogram()[255:])
    return changed > MAX_CHANGED_PIXELS * before.width * before.height


def fill_history(page: Page, fakes: Fakes) -> None:
    for question, tokens in OTHER_CHATS:
        fakes.a.queue(Script(tokens=tokens))
        page.locator("#new-chat").click()
        ask(page, question)
    fakes.a.queue(Script(tokens=ANSWER_WITH_CODE, delay=0.005))
    page.locator("#new-chat").click()
    ask(page, "Explain quicksort in Python")


def test_main_screens(
    page: Page, fakes: Fakes, browser: Browser, app_server: LiveServer, screenshot_dir: Path
) -> None:
    open_home(page)
    expect(page.locator(".example-card")).to_have_count(2)
    shoot(page, screenshot_dir, "empty-chat")

    fill_history(page, fakes)
    expect(sidebar_items(page)).to_have_count(3)
    expect(last_answer(page).locator(".code-block .hljs-keyword").first).to_be_visible()
    expect(last_answer(page).locator(".katex")).to_have_count(2)
    shoot(page, screenshot_dir, "answer-with-code")

    page.locator("#open-settings").click()
    expect(page.locator("#settings-dialog")).to_be_visible()
    shoot(page, screenshot_dir, "settings")

    page.locator("#settings-dialog label:has(input[value=dark])").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.keyboard.press("Escape")
    shoot(page, screenshot_dir, "dark-theme")
    page.locator("#conv-search").fill("Lisbon")
    expect(sidebar_items(page)).to_have_count(1)
    page.locator("#conv-search").fill("")
    expect(sidebar_items(page)).to_have_count(3)
    page.locator("#open-settings").click()
    page.locator("#settings-dialog label:has(input[value=light])").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.keyboard.press("Escape")

    conversation = page.url
    page.locator("#open-settings").click()
    page.locator("#settings-share").click()
    expect(page.locator("#share-url")).to_be_visible()
    share_url = page.locator("#share-url").input_value()
    page.keyboard.press("Escape")
    phone = new_context(
        browser,
        app_server,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        storage_state=page.context.storage_state(),
    )
    try:
        small = phone.new_page()
        small.goto(conversation)
        expect(small.locator("#app")).to_have_attribute("data-ready", "true")
        expect(last_answer(small).locator(".code-block")).to_be_visible()
        shoot(small, screenshot_dir, "phone")
        small.locator("#menu-toggle").click()
        expect(small.locator("#sidebar")).to_be_in_viewport()
        small.wait_for_timeout(300)  # the drawer's slide-in transition
        shoot(small, screenshot_dir, "phone-sidebar")
    finally:
        phone.close()

    page.goto(share_url)
    expect(page.locator("#continue-shared")).to_be_visible()
    expect(page.locator(".msg-assistant .code-block")).to_be_visible()
    shoot(page, screenshot_dir, "shared")
