"""Attachments, assistants, feedback and keyboard shortcuts in a real browser, against a
`"multimodal": true` model on a fake OpenAI-compatible server (a real socket) and a text model
on a fake TGI: attach a text file and an image, see the answer, reload, export, share, and
check that another visitor cannot fetch the file. And a PDF asked about through a reasoning
model (a scripted server that reads its prompt and streams vLLM's reasoning deltas): the
reasoning streams into an open "Thinking" block that closes into "Reasoned for ..." when the
answer starts, and the answer quotes what only the PDF says."""

from __future__ import annotations

import base64
import io
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.chatui.fake_endpoints import FakeOpenAI, FakeTGI, Script
from tests.e2e.conftest import new_context, visitor_page
from tests.e2e.pages import (
    ask,
    conversation_id,
    js_constant,
    last_answer,
    open_home,
    send,
    wait_idle,
)
from tests.e2e.server import LiveServer
from tests.e2e.test_screenshots import shoot
from tests.support.documents import pdf_bytes

pytestmark = pytest.mark.browser

VISION_NAME = "Vision Model"
TEXT_NAME = "Text Model"
READER_NAME = "Reader"
LAUNCH_CODE = re.compile(r"launch code is ([A-Z]+-\d+)")
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


class PromptReader(FakeOpenAI):
    """A reasoning model that reads its prompt: it thinks aloud in slow reasoning deltas, then
    answers with the launch code its prompt holds (or says it found none)."""

    def _next_script(self) -> Script:
        prompt = str(self.generation_requests[-1].body["messages"][-1]["content"])
        found = LAUNCH_CODE.search(prompt)
        answer = f"The code is {found.group(1)}." if found else "I found no code."
        thoughts = ["Reading", " the", " attached", " file", " carefully", "."]
        return Script(reasoning=thoughts, tokens=re.findall(r"\S+\s*", answer), delay=0.15)


class NotesPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body><h1>Field notes</h1><p>The launch code is HERON-3.</p></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def notes_url() -> Iterator[str]:
    """A web page on this machine (reached through the admin's allow-list)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), NotesPage)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/field-notes"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def reader() -> Iterator[PromptReader]:
    with PromptReader() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    fakes: tuple[FakeOpenAI, FakeTGI], reader: PromptReader, tmp_path_factory
) -> Iterator[LiveServer]:
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
        {
            "name": "org/reader",
            "displayName": READER_NAME,
            "supportsReasoning": True,
            "parameters": {"max_new_tokens": 64},
            "endpoints": [{"type": "openai", "baseURL": reader.base_url}],
        },
    ]
    files = tmp_path_factory.mktemp("attachments")
    # The admin lets URL fetching reach this machine, where the test's page is served.
    env = {"ATTACHMENTS_DIR": str(files), "URL_FETCH_ALLOWED_NETWORKS": "127.0.0.1"}
    with LiveServer(models, extra_env=env) as live:
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


def test_a_pdf_and_a_page_by_url_answer_through_a_reasoning_model(
    page: Page, tmp_path: Path, notes_url: str
) -> None:
    brief = tmp_path / "brief.pdf"
    brief.write_bytes(pdf_bytes(["Operation notes", "The launch code is PELICAN-7."]))
    open_home(page)
    page.locator("#model-picker").select_option(label=READER_NAME)
    page.locator("#file-input").set_input_files(str(brief))
    expect(page.locator("#pending-files .file-chip")).to_have_count(1)
    send(page, "What is the launch code?")

    block = last_answer(page).locator(".msg-reasoning")
    expect(block).to_have_class(re.compile(r"\bis-thinking\b"))  # streaming, live
    expect(block.locator("summary")).to_have_text("Thinking")
    block.locator("summary").click()
    expect(block.locator(".msg-reasoning-text")).to_contain_text("Reading the")
    wait_idle(page)

    answer = last_answer(page)
    expect(answer.locator(".msg-answer")).to_have_text("The code is PELICAN-7.")
    expect(block).not_to_have_class(re.compile(r"\bis-thinking\b"))
    expect(block.locator("summary")).to_have_text(re.compile(r"^Reasoned for \d+\.\d s$"))
    expect(block.locator(".msg-reasoning-text")).to_have_text(
        "Reading the attached file carefully."
    )
    expect(page.locator(".msg-user .file-chip")).to_have_text(re.compile("brief.pdf"))

    page.reload()  # stored with the message: collapsed again, with its duration
    block = last_answer(page).locator(".msg-reasoning")
    expect(block.locator("summary")).to_have_text(re.compile(r"^Reasoned for \d+\.\d s$"))
    assert block.get_attribute("open") is None
    expect(last_answer(page).locator(".msg-answer")).to_have_text("The code is PELICAN-7.")

    page.locator("#attach-url-btn").click()  # a page by URL, fetched by the server on send
    page.locator("#url-input").fill(notes_url)
    page.locator("#url-add").click()
    expect(page.locator("#pending-files .file-chip")).to_have_text(notes_url)
    send(page, "And the code in these notes?")
    wait_idle(page)
    expect(last_answer(page).locator(".msg-answer")).to_have_text("The code is HERON-3.")
    expect(page.locator(".msg-user .file-chip").last).to_contain_text("field-notes.html")
