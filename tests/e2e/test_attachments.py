"""Attachments, assistants, feedback and keyboard shortcuts in a real browser, against a
`"multimodal": true` model on a fake OpenAI-compatible server (a real socket) and a text model
on a fake TGI: attach a text file and an image, see the answer, reload, export, share, and
check that another visitor cannot fetch the file."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.chatui.fake_endpoints import FakeOpenAI, FakeTGI, Script
from tests.e2e.conftest import new_context, visitor_page
from tests.e2e.pages import ask, conversation_id, js_constant, last_answer, open_home, wait_idle
from tests.e2e.server import LiveServer
from tests.e2e.test_screenshots import shoot

pytestmark = pytest.mark.browser

VISION_NAME = "Vision Model"
TEXT_NAME = "Text Model"
NOTES = "# Shopping\n- apples\n- pears\n"
COPIED = js_constant("shortcuts.js", "COPIED_LAST_ANSWER")
UNSEEN = js_constant("files.js", "FILES_NOT_SEEN")  # "{model} ... {names}."
ASSISTANT_LABEL = js_constant("model-picker.js", "ASSISTANT_LABEL")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "#3b82f6").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAI, FakeTGI]]:
    with FakeOpenAI(Script(tokens=["A blue", " square."])) as vision, FakeTGI() as text:
        yield vision, text


@pytest.fixture(scope="module")
def server(fakes: tuple[FakeOpenAI, FakeTGI], tmp_path_factory) -> Iterator[LiveServer]:
    vision, text = fakes
    models = [
        {
            "name": "org/vision",
            "displayName": VISION_NAME,
            "multimodal": True,
            "parameters": {"max_new_tokens": 64},
            "endpoints": [{"type": "openai", "baseURL": vision.base_url}],
        },
        {
            "name": "org/text",
            "displayName": TEXT_NAME,
            "parameters": {"max_new_tokens": 64},
            "endpoints": [{"type": "tgi", "url": text.url}],
        },
    ]
    files = tmp_path_factory.mktemp("attachments")
    with LiveServer(models, extra_env={"ATTACHMENTS_DIR": str(files)}) as live:
        yield live


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with visitor_page(browser, server) as page:
        yield page


def test_attach_a_text_file_and_an_image_reload_export_share(
    page: Page, browser: Browser, server: LiveServer, fakes, tmp_path: Path
) -> None:
    vision, _ = fakes
    notes, image = tmp_path / "notes.md", tmp_path / "square.png"
    notes.write_text(NOTES)
    image.write_bytes(png_bytes())
    open_home(page)
    assert "image/*" in page.locator("#file-input").get_attribute("accept")
    page.locator("#file-input").set_input_files([str(notes), str(image)])
    expect(page.locator("#pending-files .file-chip")).to_have_count(2)
    page.locator("#prompt").fill("What is in these?")
    shoot(page, Path(__file__).resolve().parents[2] / "docs" / "screenshots", "attachments")
    expect(ask(page, "What is in these?")).to_have_text("A blue square.")
    expect(page.locator("#pending-files")).to_be_hidden()
    chips = page.locator(".msg-user .file-chip")
    expect(chips).to_have_count(2)
    expect(page.locator(".msg-user .file-thumb")).to_have_count(1)

    body = vision.generation_requests[-1].body
    image_part, text_part = body["messages"][-1]["content"]
    assert image_part["image_url"]["url"] == (
        "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    )
    assert text_part["text"] == f"File: notes.md\n```md\n{NOTES.rstrip()}\n```\n\nWhat is in these?"

    page.locator(".msg-vote-up").click()
    expect(page.locator(".msg-vote-up")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.locator(".msg-user .file-chip")).to_have_count(2)
    expect(page.locator(".msg-vote-up")).to_have_attribute("aria-pressed", "true")
    image_url = page.locator(".msg-user .file-kind-image").get_attribute("href")
    assert page.request.get(image_url).body() == png_bytes()

    export = page.request.get("/api/export").json()
    files = export["conversations"][0]["messages"][0]["files"]
    assert sorted(f["name"] for f in files) == ["notes.md", "square.png"]
    assert any(base64.b64decode(f["data"]) == NOTES.encode() for f in files)

    page.locator("#open-settings").click()
    page.locator("#settings-share").click()
    expect(page.locator("#share-url")).to_have_value(re.compile(r"/r/"))
    share_url = page.locator("#share-url").input_value()
    page.keyboard.press("Escape")
    other = new_context(browser, server)
    try:
        visitor = other.new_page()
        assert visitor.request.get(image_url).status == 404
        visitor.goto(share_url)
        expect(visitor.locator(".msg-user .file-chip")).to_have_count(2)
        shared_image = visitor.locator(".msg-user .file-kind-image").get_attribute("href")
        assert shared_image != image_url
        assert visitor.request.get(shared_image).body() == png_bytes()
    finally:
        other.close()

    refuses_images_and_says_so(page, fakes, image)


def refuses_images_and_says_so(page: Page, fakes, image: Path) -> None:
    """On a text-only model: the switch names the images it will not see, the paperclip offers
    no images, a refused image holds its message back until removed, and the notice then goes."""
    vision, text = fakes
    sent = len(vision.generation_requests)
    page.locator("#model-select").select_option(label=TEXT_NAME)
    notice = page.locator("#notice")
    expect(notice).to_have_text(UNSEEN.format(model=TEXT_NAME, names="square.png"))
    assert "image/" not in page.locator("#file-input").get_attribute("accept")

    page.locator("#file-input").set_input_files([str(image)])
    expect(notice).to_contain_text(f"{TEXT_NAME} does not accept images")
    expect(page.locator("#pending-files .file-chip.is-refused")).to_have_count(1)
    page.locator("#prompt").fill("Describe it")
    page.locator("#prompt").press("Enter")
    expect(page.locator("#prompt")).to_have_value("Describe it")  # held back, not sent
    expect(page.locator(".msg-user")).to_have_count(1)
    page.locator("#pending-files .file-remove").click()
    expect(notice).to_be_hidden()
    page.locator("#prompt").press("Enter")
    expect(page.locator(".msg-user")).to_have_count(2)
    wait_idle(page)
    assert len(vision.generation_requests) == sent
    assert "data:image" not in text.generation_requests[-1].body["inputs"]
    expect(notice).to_be_hidden()


def test_assistant_page_start_and_shortcuts(page: Page, server: LiveServer, fakes) -> None:
    vision, _ = fakes
    page.goto("/signup")
    page.locator("#id_username").fill("author")
    page.locator("#id_password1").fill("a-Long-pw-77")
    page.locator("#id_password2").fill("a-Long-pw-77")
    page.locator("form button[type=submit]").click()
    page.goto("/assistants/new")
    page.locator("#id_name").fill("Shopping Helper")
    page.locator("#id_description").fill("Plans your groceries.")
    page.locator("#id_system_prompt").fill("You plan groceries.")
    page.locator("#id_starter_0").fill("Plan a week of dinners")
    page.locator("#id_starter_1").fill("What is in season?")
    page.locator("#save-assistant").click()
    expect(page.locator("#assistant-name")).to_have_text("Shopping Helper")
    page.goto("/assistants")
    expect(page.locator(".assistant-card")).to_have_count(1)
    shoot(page, Path(__file__).resolve().parents[2] / "docs" / "screenshots", "assistants")

    page.locator(".assistant-card-link").click()
    assistant_url = page.url
    page.locator("#copy-assistant-link").click()
    expect(page.locator("#copy-assistant-link")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == assistant_url

    # "Start a chat" opens the assistant's empty chat: its avatar, name, description and model.
    page.locator("#start-assistant").click()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")
    expect(page.locator("#model-card-label")).to_have_text(ASSISTANT_LABEL)
    expect(page.locator("#model-name")).to_have_text("Shopping Helper")
    expect(page.locator("#model-desc")).to_have_text("Plans your groceries.")
    expect(page.locator("#assistant-model-name")).to_have_text(VISION_NAME)
    expect(page.locator("#intro-avatar .assistant-avatar")).to_be_visible()
    expect(page.locator("#empty-title")).to_be_hidden()
    expect(page.locator("#model-picker")).to_be_hidden()
    expect(page.locator("#assistant-chip")).to_contain_text("Shopping Helper")
    expect(page.locator(".example-card")).to_have_count(2)
    shoot(page, Path(__file__).resolve().parents[2] / "docs" / "screenshots", "assistant-chat")
    # Leaving without a message leaves nothing behind.
    page.goto("/assistants")
    expect(page.locator(".assistant-card")).not_to_contain_text("1 chat")
    open_home(page)
    expect(page.locator("#conv-list .conv-item")).to_have_count(0)

    # A starter on the assistant's page starts the chat with it.
    page.goto(assistant_url)
    page.locator(".assistant-starter").first.click()
    expect(page.locator(".msg-user .msg-bubble")).to_have_text(["Plan a week of dinners"])
    conversation_id(page)
    expect(last_answer(page)).to_have_text("A blue square.")
    expect(page.locator("#assistant-chip")).to_contain_text("Shopping Helper")
    messages = vision.generation_requests[-1].body["messages"]
    assert messages[0] == {"role": "system", "content": "You plan groceries."}

    page.keyboard.press("Control+/")
    expect(page.locator("#shortcuts-dialog .shortcut")).to_have_count(5)
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")
    expect(page.locator("#notice")).to_have_text(COPIED)
    assert page.evaluate("navigator.clipboard.readText()") == "A blue square."
    page.keyboard.press("Control+Shift+O")
    expect(page).to_have_url(server.url + "/")
    page.locator("#new-chat").focus()
    page.keyboard.press("Shift+Escape")
    expect(page.locator("#prompt")).to_be_focused()
    ask(page, "Hello")
