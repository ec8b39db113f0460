"""The rough edges of the chat page on the shared server: styled 404 pages with a way home, no
thumbs on a failed answer, a stopped answer marked as stopped (also after a reload), and a phone
top bar that cuts neither the title nor the model switch."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.chatui.fake_endpoints import Script
from tests.e2e.conftest import PHONE, Fakes
from tests.e2e.pages import answers, js_constant, last_answer, open_home, send, wait_idle
from tests.e2e.server import APP_NAME, MODEL_A_NAME

pytestmark = pytest.mark.browser

STOPPED = js_constant("message-view.js", "STOPPED_LABEL")


def expect_not_found_page(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 404
    expect(page.locator("#error-page")).to_have_attribute("data-status", "404")
    expect(page.locator("#error-page .brand")).to_contain_text(APP_NAME)
    expect(page.locator("#error-home")).to_have_attribute("href", "/")


def test_error_pages_failed_and_stopped_answers_and_the_phone_top_bar(
    page: Page, fakes: Fakes
) -> None:
    expect_not_found_page(page, f"/conversation/{uuid.uuid4()}")
    expect_not_found_page(page, "/r/deleted-link")
    page.locator("#error-home").click()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")

    fakes.a.queue(Script(fail="status", status=500))
    open_home(page)
    send(page, "What is on the menu today?")
    wait_idle(page)
    failed = answers(page).last
    expect(failed.locator(".msg-error")).to_be_visible()
    expect(failed.locator(".msg-vote")).to_have_count(0)
    expect(failed.locator(".msg-copy")).to_have_count(1)

    fakes.a.queue(Script(tokens=[f"w{i} " for i in range(60)], delay=0.1))
    send(page, "Count slowly")
    expect(last_answer(page)).to_contain_text("w2")
    page.locator("#stop-btn").click()
    wait_idle(page)
    expect(answers(page).last.locator(".msg-stopped")).to_have_text(STOPPED)
    expect(answers(page).last.locator(".msg-vote")).to_have_count(2)
    page.reload()
    expect(answers(page).last.locator(".msg-stopped")).to_have_text(STOPPED)
    expect(answers(page).first.locator(".msg-stopped")).to_have_count(0)

    page.set_viewport_size(PHONE)
    title = page.locator("#conv-title")
    expect(title).to_have_text("What is on the menu today?")
    assert title.evaluate("e => e.scrollWidth <= e.clientWidth"), "the title is cut"
    switch = page.locator("#model-select")
    expect(switch).to_be_visible()
    assert switch.evaluate("e => e.getBoundingClientRect().width") >= 300
    assert switch.evaluate("e => e.options[e.selectedIndex].text") == MODEL_A_NAME
