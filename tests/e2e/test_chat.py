"""The conversation itself in a real browser: streaming, stop, regenerate, edit and branches,
switching model, continue, and coming back after a reload."""

from __future__ import annotations

import itertools

import pytest
from playwright.sync_api import Page, expect

from tests.chatui.fake_endpoints import Script
from tests.e2e.conftest import Fakes
from tests.e2e.pages import (
    answers,
    ask,
    conversation_id,
    last_answer,
    observe_growth,
    open_home,
    send,
    sidebar_items,
    user_bubbles,
    wait_idle,
)
from tests.e2e.server import EXAMPLE_PROMPT, MODEL_A_NAME, MODEL_B_NAME

pytestmark = pytest.mark.browser

STORY = [f"word{i} " for i in range(24)]


def test_answer_streams_in_growing_pieces(page: Page, fakes: Fakes) -> None:
    fakes.a.script = Script(tokens=STORY, delay=0.08)
    open_home(page)
    send(page, "Tell me a story")

    seen = observe_growth(last_answer(page), until=page.locator("#stop-btn"))

    assert len(seen) >= 3, seen
    for before, after in itertools.pairwise(seen):
        assert after.startswith(before.rstrip()), (before, after)
    assert last_answer(page).inner_text().strip() == "".join(STORY).strip()
    expect(user_bubbles(page)).to_have_text(["Tell me a story"])
    expect(answers(page).locator(".msg-model")).to_have_text([MODEL_A_NAME])
    assert fakes.a.generation_requests[0].body["stream"] is True


def test_stop_keeps_the_partial_answer_and_closes_the_stream(page: Page, fakes: Fakes) -> None:
    fakes.a.script = Script(tokens=STORY * 4, delay=0.1)
    open_home(page)
    send(page, "Talk for a long time")
    expect(last_answer(page)).to_contain_text("word2")

    page.locator("#stop-btn").click()
    wait_idle(page)

    partial = last_answer(page).inner_text().strip()
    assert partial.startswith("word0 word1 word2")
    assert len(partial) < len("".join(STORY * 4).strip())
    assert fakes.a.disconnected.wait(10), "the model server never saw the client leave"

    page.reload()
    expect(last_answer(page)).to_have_text(partial)


def test_example_card_starts_a_conversation(page: Page, fakes: Fakes) -> None:
    open_home(page)
    page.locator(".example-card").first.click()
    expect(user_bubbles(page)).to_have_text([EXAMPLE_PROMPT])
    wait_idle(page)
    expect(last_answer(page)).to_have_text("Hello! How can I help?")
    conversation_id(page)


def test_regenerate_adds_a_sibling_answer(page: Page, fakes: Fakes) -> None:
    fakes.a.queue(Script(tokens=["First answer"]), Script(tokens=["Second answer"]))
    open_home(page)
    ask(page, "Question")
    expect(last_answer(page)).to_have_text("First answer")

    answers(page).last.locator(".msg-regenerate").click()
    wait_idle(page)

    expect(last_answer(page)).to_have_text("Second answer")
    switcher = answers(page).last.locator(".branch-switcher")
    expect(switcher.locator(".branch-count")).to_have_text("2/2")
    switcher.locator(".branch-prev").click()
    expect(last_answer(page)).to_have_text("First answer")
    expect(answers(page).last.locator(".branch-count")).to_have_text("1/2")
    expect(answers(page)).to_have_count(1)


def test_edit_creates_a_branch_and_switching_shows_each(page: Page, fakes: Fakes) -> None:
    fakes.a.queue(Script(tokens=["About cats"]), Script(tokens=["About dogs"]))
    open_home(page)
    ask(page, "Tell me about cats")

    page.locator(".msg-user .msg-edit").click()
    editor = page.locator(".edit-form textarea")
    expect(editor).to_have_value("Tell me about cats")
    editor.fill("Tell me about dogs")
    page.locator(".edit-form .edit-save").click()
    wait_idle(page)

    expect(user_bubbles(page)).to_have_text(["Tell me about dogs"])
    expect(last_answer(page)).to_have_text("About dogs")
    expect(page.locator(".msg-user .branch-count")).to_have_text("2/2")

    page.locator(".msg-user .branch-prev").click()
    expect(user_bubbles(page)).to_have_text(["Tell me about cats"])
    expect(last_answer(page)).to_have_text("About cats")
    page.locator(".msg-user .branch-next").click()
    expect(user_bubbles(page)).to_have_text(["Tell me about dogs"])
    prompts = [r.body["inputs"] for r in fakes.a.generation_requests]
    assert "Tell me about dogs" in prompts[1]
    assert "Tell me about cats" not in prompts[1]


def test_switching_model_mid_conversation_labels_the_new_answer(page: Page, fakes: Fakes) -> None:
    fakes.b.script = Script(tokens=["From", " the", " second", " model"])
    open_home(page)
    ask(page, "First question")

    page.locator("#model-select").select_option(label=MODEL_B_NAME)
    ask(page, "Second question")

    expect(answers(page).locator(".msg-model")).to_have_text([MODEL_A_NAME, MODEL_B_NAME])
    expect(last_answer(page)).to_have_text("From the second model")
    assert len(fakes.a.generation_requests) == 1
    assert len(fakes.b.generation_requests) == 1
    assert "First question" in fakes.b.generation_requests[0].body["inputs"]


def test_continue_extends_an_answer_cut_by_the_length_limit(page: Page, fakes: Fakes) -> None:
    fakes.a.queue(
        Script(tokens=["The list:", " one,"], finish_reason="length"),
        Script(tokens=[" two,", " three."]),
    )
    open_home(page)
    ask(page, "Count to three")
    button = answers(page).last.locator(".msg-continue")
    expect(button).to_be_visible()

    button.click()
    wait_idle(page)

    expect(last_answer(page)).to_have_text("The list: one, two, three.")
    expect(answers(page)).to_have_count(1)
    expect(answers(page).last.locator(".msg-continue")).to_have_count(0)


def test_reload_and_sidebar_bring_the_conversation_back(page: Page, fakes: Fakes) -> None:
    open_home(page)
    ask(page, "Remember this conversation")
    conv_id = conversation_id(page)

    page.reload()
    expect(user_bubbles(page)).to_have_text(["Remember this conversation"])
    expect(last_answer(page)).to_have_text("Hello! How can I help?")

    page.locator("#new-chat").click()
    expect(page.locator("#empty-state")).to_be_visible()
    expect(page.locator("#messages .msg")).to_have_count(0)

    item = sidebar_items(page).filter(has_text="Remember this conversation")
    expect(item).to_have_count(1)
    item.locator(".conv-link").click()
    expect(page).to_have_url(f"/conversation/{conv_id}")
    expect(last_answer(page)).to_have_text("Hello! How can I help?")

    page.go_back()
    expect(page.locator("#empty-state")).to_be_visible()
    page.go_forward()
    expect(user_bubbles(page)).to_have_text(["Remember this conversation"])


def test_reload_mid_answer_shows_the_text_so_far_then_live_tokens(page: Page, fakes: Fakes) -> None:
    fakes.a.script = Script(tokens=STORY, delay=0.2)
    open_home(page)
    send(page, "A slow answer")
    expect(last_answer(page)).to_contain_text("word3")

    page.reload()
    expect(user_bubbles(page)).to_have_text(["A slow answer"])
    expect(page.locator("#stop-btn")).to_be_visible()
    seen = observe_growth(last_answer(page), until=page.locator("#stop-btn"))
    assert len(seen) >= 2, seen
    wait_idle(page)
    expect(last_answer(page)).to_have_text("".join(STORY).strip())
