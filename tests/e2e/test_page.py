"""The page around the conversation: composer keys, settings (model, system prompt, theme),
and the phone layout with its collapsible sidebar."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import PHONE, Fakes, new_context
from tests.e2e.pages import ask, js_constant, open_home, send, user_bubbles, wait_idle
from tests.e2e.server import MODEL_A_ID, MODEL_B_ID, MODEL_B_NAME, LiveServer

pytestmark = pytest.mark.browser

PROMPT_SAVED = js_constant("settings.js", "PROMPT_SAVED")


@contextmanager
def paused(server: LiveServer) -> Iterator[None]:
    """The web process stopped (SIGSTOP) for the block: requests queue up unanswered, as
    under load."""
    assert server.server is not None and server.server.process is not None
    pid = server.server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_composer_keys_and_send_button(page: Page, fakes: Fakes) -> None:
    open_home(page)
    prompt = page.locator("#prompt")
    send_button = page.locator("#send-btn")
    expect(prompt).to_be_focused()
    expect(send_button).to_be_disabled()

    prompt.type("line one")
    expect(send_button).to_be_enabled()
    height = prompt.bounding_box()["height"]
    prompt.press("Shift+Enter")
    prompt.type("line two")
    prompt.press("Shift+Enter")
    prompt.type("line three")
    expect(prompt).to_have_value("line one\nline two\nline three")
    assert prompt.bounding_box()["height"] > height  # grew with its content

    prompt.press("Enter")
    expect(user_bubbles(page)).to_have_text(["line one\nline two\nline three"])
    wait_idle(page)
    expect(prompt).to_have_value("")
    expect(send_button).to_be_disabled()


def test_settings_model_prompt_and_theme(page: Page, fakes: Fakes) -> None:
    open_home(page)
    page.locator("#open-settings").click()
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()

    dialog.locator("#settings-model").select_option(MODEL_B_ID)
    dialog.locator("#settings-prompt").fill("You are a pirate.")
    dialog.locator("#settings-prompt-save").click()
    expect(dialog.locator("#settings-saved")).to_have_text(PROMPT_SAVED)

    dialog.locator("label:has(input[value=dark])").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("#model-name")).to_have_text(MODEL_B_NAME)

    ask(page, "Who are you?")
    assert "You are a pirate." in fakes.b.generation_requests[0].body["inputs"]
    assert fakes.a.generation_requests == []

    page.goto("/")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("#model-picker")).to_have_value(MODEL_B_ID)
    page.locator("#model-picker").select_option(MODEL_A_ID)
    page.locator("#open-settings").click()
    expect(dialog.locator("#settings-model")).to_have_value(MODEL_A_ID)
    dialog.locator("label:has(input[value=light])").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")


def test_overlapping_first_saves_keep_one_visitor(
    page: Page, fakes: Fakes, app_server: LiveServer
) -> None:
    """A new visitor picks a model and saves a prompt while the server is busy: both saves
    reach the same visitor (two writes sent at once without a session would make two)."""
    open_home(page)
    page.locator("#open-settings").click()
    dialog = page.locator("#settings-dialog")
    with paused(app_server):
        dialog.locator("#settings-model").select_option(MODEL_B_ID)
        dialog.locator("#settings-prompt").fill("You are a pirate.")
        dialog.locator("#settings-prompt-save").click()
        page.wait_for_timeout(300)  # both saves are made while no answer can come
    expect(dialog.locator("#settings-saved")).to_have_text(PROMPT_SAVED)

    page.goto("/")  # the dialog, opened before the page is ready, waits for the settings
    expect(page.locator("#model-picker")).to_have_value(MODEL_B_ID)
    page.locator("#open-settings").click()
    expect(dialog.locator("#settings-prompt")).to_have_value("You are a pirate.")


def test_phone_layout_sidebar_toggles(
    fakes: Fakes, browser: Browser, app_server: LiveServer
) -> None:
    context = new_context(browser, app_server, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        open_home(page)
        sidebar = page.locator("#sidebar")
        toggle = page.locator("#menu-toggle")
        expect(sidebar).not_to_be_in_viewport()
        expect(toggle).to_have_attribute("aria-expanded", "false")

        send(page, "Hello from a phone")
        wait_idle(page)
        composer = page.locator("#composer").bounding_box()
        assert composer["x"] >= 0 and composer["x"] + composer["width"] <= PHONE["width"]

        toggle.click()
        expect(sidebar).to_be_in_viewport()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#conv-list .conv-item")).to_have_count(1)
        page.keyboard.press("Escape")
        expect(sidebar).not_to_be_in_viewport()

        toggle.click()
        page.locator("#new-chat").click()
        expect(sidebar).not_to_be_in_viewport()
        expect(page.locator("#empty-state")).to_be_visible()
        toggle.click()
        page.locator("#conv-list .conv-link").first.click()
        expect(sidebar).not_to_be_in_viewport()
        expect(user_bubbles(page)).to_have_text(["Hello from a phone"])
    finally:
        context.close()
