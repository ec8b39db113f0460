"""Documents attached to a message (PDF, Word, PowerPoint, Excel, HTML) reach the model as
their text, named and fenced; one too long for the model is cut with a notice the user sees;
a scanned PDF gets a readable refusal. A page added by URL is fetched only from public
addresses (the admin's allow-list lets this test's loopback server through)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chatui import documents, url_attachments
from chatui.attachments import attachment_for_owner
from tests.chatui.helpers import MODEL_B, connect, db, make_owner, new_conversation, receive_until
from tests.support.documents import docx_bytes, pdf_bytes, pptx_bytes, xlsx_bytes

SMALL = "small"  # a context of 120 tokens, 20 of them for the answer
PAGE = (
    b"<!doctype html><html><head><script>steal()</script></head>"
    b"<body><h1>Menu</h1><p>Soup of the day: lentil</p></body></html>"
)


@pytest.fixture
def small_model(endpoints):
    models = json.loads(endpoints.env()["MODELS"])
    models.append(
        {
            "id": SMALL,
            "name": "org/small",
            "contextLength": 120,
            "parameters": {"max_new_tokens": 20},
            "endpoints": [{"type": "openai", "baseURL": endpoints.openai.base_url}],
        }
    )
    endpoints.configure(MODELS=json.dumps(models), LLM_SUMMARIZATION="false")
    return endpoints


def upload(owner, conversation_id: str, name: str, data: bytes):
    file = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return owner.client().post(f"/api/conversations/{conversation_id}/attachments", {"file": file})


async def ask(owner, conversation_id: str, question: str, ids: list[str]) -> None:
    socket = await connect(owner, conversation_id)
    message = {"type": "send", "content": question, "parent_id": None, "attachments": ids}
    await socket.send_json_to(message)
    await receive_until(socket, "final")
    await socket.disconnect()


def test_each_format_reads_as_text() -> None:
    cases = {
        "r.pdf": (pdf_bytes(["Quarterly revenue: 42 (million)", "Costs: 17"]), documents.PDF),
        "r.docx": (docx_bytes(["Minutes"], [["Owner", "Due"], ["Ann", "May"]]), documents.DOCX),
        "r.pptx": (pptx_bytes([("Roadmap", "Ship in June")]), documents.PPTX),
        "r.xlsx": (xlsx_bytes({"Budget": [["rent", 1200], ["food", 300.5]]}), documents.XLSX),
        "page": (PAGE, documents.HTML),
    }
    texts = {}
    for name, (data, mime) in cases.items():
        assert documents.document_mime(data, name) == mime
        texts[name] = documents.document_text(data, name=name, mime=mime)
    assert texts["r.pdf"] == "Quarterly revenue: 42 (million)\nCosts: 17"
    assert texts["r.docx"] == "Minutes\nOwner | Due\nAnn | May"
    assert texts["r.pptx"] == "## Slide 1\nRoadmap\nShip in June"
    assert texts["r.xlsx"] == "## Sheet: Budget\nrent | 1200\nfood | 300.5"
    assert texts["page"] == "Menu\nSoup of the day: lentil"  # no script
    assert documents.document_mime(b"plain words", "notes.txt") is None
    with pytest.raises(Exception, match="could not be read as a PDF"):
        documents.document_text(b"%PDF-1.4 broken", name="b.pdf", mime=documents.PDF)


@pytest.mark.django_db(transaction=True)
async def test_a_pdf_answers_a_question(endpoints):
    owner = await db(make_owner)()
    cid = await db(new_conversation)(owner, MODEL_B)
    pdf = pdf_bytes(["The launch code is PELICAN-7.", "Keep it secret."])
    response = await db(upload)(owner, cid, "brief.pdf", pdf)
    assert response.status_code == 201, response.json()
    assert (response.json()["kind"], response.json()["mime"]) == ("text", documents.PDF)
    assert "notice" not in response.json()
    await ask(owner, cid, "What is the launch code?", [response.json()["id"]])
    sent = endpoints.openai.generation_requests[-1].body["messages"][-1]["content"]
    assert sent == (
        "File: brief.pdf\n```pdf\nThe launch code is PELICAN-7.\nKeep it secret.\n```\n\n"
        "What is the launch code?"
    )
    download = await db(owner.client().get)(f"/api/attachments/{response.json()['id']}")
    assert download["Content-Type"] == documents.PDF  # the file itself, as a download
    assert b"".join(download.streaming_content) == pdf


@pytest.mark.django_db(transaction=True)
async def test_a_document_too_long_is_cut_with_a_notice(small_model):
    owner = await db(make_owner)()
    cid = await db(new_conversation)(owner, SMALL)
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum " * 10 for i in range(40)]
    response = await db(upload)(owner, cid, "long.docx", docx_bytes(paragraphs))
    assert response.status_code == 201, response.json()
    assert response.json()["notice"].startswith("long.docx is longer than org/small reads")
    await ask(owner, cid, "Summarize", [response.json()["id"]])
    sent = small_model.openai.generation_requests[-1].body["messages"][-1]["content"]
    assert sent.startswith("File: long.docx\n```docx\nParagraph 0: lorem")
    assert documents.CUT_MARK.format(name="long.docx") in sent
    assert "Paragraph 39" not in sent
    assert len(sent) < 100 * 4


@pytest.mark.django_db
def test_a_scanned_pdf_and_unknown_files_are_refused_readably(endpoints):
    owner = make_owner()
    cid = new_conversation(owner, MODEL_B)
    scanned = upload(owner, cid, "scan.pdf", pdf_bytes(None))
    assert scanned.status_code == 400
    assert scanned.json()["error"] == documents.PDF_NO_TEXT.format(name="scan.pdf")
    broken = upload(owner, cid, "broken.docx", b"PK\x03\x04" + b"\x00" * 40)
    assert broken.status_code == 400 and "broken.docx cannot be attached" in broken.json()["error"]


class Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def page_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/menu"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.django_db(transaction=True)
async def test_a_page_by_url_is_fetched_only_when_its_address_is_allowed(
    endpoints, page_server, settings
):
    owner = await db(make_owner)()
    cid = await db(new_conversation)(owner, MODEL_B)
    post = owner.client().post
    path = f"/api/conversations/{cid}/attachments/url"
    refused = await db(post)(path, {"url": page_server}, content_type="application/json")
    assert refused.status_code == 422
    assert refused.json()["error"] == url_attachments.FETCH_FAILED.format(
        url=page_server, reason="127.0.0.1 is a private or local address; it cannot be fetched."
    )
    settings.CHATUI_URL_FETCH_ALLOWED_NETWORKS = ["127.0.0.1"]
    fetched = await db(post)(path, {"url": page_server}, content_type="application/json")
    assert fetched.status_code == 201, fetched.json()
    assert (fetched.json()["name"], fetched.json()["mime"]) == ("menu.html", documents.HTML)
    await ask(owner, cid, "What soup?", [fetched.json()["id"]])
    sent = endpoints.openai.generation_requests[-1].body["messages"][-1]["content"]
    assert sent.startswith("File: menu.html\n```html\nMenu\nSoup of the day: lentil\n```")
    stranger = await db(make_owner)()
    with pytest.raises(Exception, match="File not found"):
        await db(attachment_for_owner)(
            identity=stranger.identity, attachment_id=fetched.json()["id"]
        )
    no_url = await db(post)(path, {"url": " "}, content_type="application/json")
    assert no_url.json()["error"] == url_attachments.NO_URL
