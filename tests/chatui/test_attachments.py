"""Attachments: files checked by content and size, refused before anything is sent when the
model cannot take them, and sent as chat-ui sends them (OpenAI image parts, TGI markdown
images, text files named and fenced); stored through the storage API, shown only to their
owner, copied into shares, exported, deleted with their conversation."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from chatui import attachments, services, uploads
from chatui.models import Attachment, Conversation
from tests.chatui.helpers import MODEL_A, MODEL_B, connect, db, make_owner, receive_until

VISION = "vision"
CODE = 'def add(a, b):\n    """``` inside"""\n    return a + b\n'


def png_bytes(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def vision(endpoints):
    """Models A (TGI) and B (OpenAI) made multimodal, plus `vision`: an OpenAI multimodal model
    that takes only PNG and reads at most 64 tokens."""
    models = json.loads(endpoints.env()["MODELS"])
    models[0]["multimodal"] = True
    models.append(
        {
            "id": VISION,
            "name": "org/vision",
            "multimodal": True,
            "multimodalAcceptedMimetypes": ["image/png"],
            "parameters": {"truncate": 64},
            "endpoints": [{"type": "openai", "baseURL": endpoints.openai.base_url}],
        }
    )
    endpoints.configure(MODELS=json.dumps(models), LLM_SUMMARIZATION="false")
    return endpoints


def upload(owner, conversation_id, name: str, data: bytes):
    return owner.client().post(
        f"/api/conversations/{conversation_id}/attachments",
        {"file": SimpleUploadedFile(name, data, content_type="application/octet-stream")},
    )


def new_conversation(owner, model: str) -> str:
    return str(services.conversation_create(identity=owner.identity, model=model).pk)


@pytest.mark.django_db(transaction=True)
async def test_openai_request_has_image_parts_and_the_text_file_framed(vision):
    owner = await db(make_owner)()
    cid = await db(new_conversation)(owner, VISION)
    image = await db(upload)(owner, cid, "photo.txt", png_bytes())  # the name lies: content wins
    code = await db(upload)(owner, cid, "add.py", CODE.encode())
    assert image.status_code == 201 and code.status_code == 201, (image.json(), code.json())
    assert (image.json()["kind"], image.json()["mime"]) == ("image", "image/png")
    assert (code.json()["kind"], code.json()["mime"]) == ("text", "text/x-python")

    socket = await connect(owner, cid)
    files = [image.json()["id"], code.json()["id"]]
    await socket.send_json_to(
        {"type": "send", "content": "What is this?", "parent_id": None, "attachments": files}
    )
    events = await receive_until(socket, "final")
    assert [f["name"] for f in events[0]["message"]["files"]] == ["photo.txt", "add.py"]
    await socket.disconnect()

    body = vision.openai.generation_requests[-1].body
    framed = f"File: add.py\n````py\n{CODE.rstrip()}\n````\n\nWhat is this?"
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": data_url(png_bytes())}},
                {"type": "text", "text": framed},
            ],
        }
    ]


@pytest.mark.django_db(transaction=True)
async def test_tgi_prompt_gets_markdown_images(vision):
    owner = await db(make_owner)()
    cid = await db(new_conversation)(owner, MODEL_A)
    image = await db(upload)(owner, cid, "cat.png", png_bytes("blue"))
    socket = await connect(owner, cid)
    await socket.send_json_to(
        {
            "type": "send",
            "content": "Describe",
            "parent_id": None,
            "attachments": [image.json()["id"]],
        }
    )
    await receive_until(socket, "final")
    await socket.disconnect()
    inputs = vision.tgi.generation_requests[-1].body["inputs"]
    assert f"![]({data_url(png_bytes('blue'))})\nDescribe" in inputs


@pytest.mark.django_db
def test_what_a_model_cannot_take_is_refused_with_a_readable_message(vision, settings):
    owner = make_owner()
    text_only = new_conversation(owner, MODEL_B)  # not multimodal
    Conversation.objects.filter(pk=text_only).update(model="hidden")
    refused = upload(owner, text_only, "cat.png", png_bytes())
    assert refused.status_code == 400
    assert refused.json()["error"] == attachments.IMAGES_NOT_SUPPORTED.format(
        model="org/hidden", name="cat.png"
    )
    cid = new_conversation(owner, VISION)
    gif = io.BytesIO()
    Image.new("RGB", (2, 2)).save(gif, format="GIF")
    assert upload(owner, cid, "a.gif", gif.getvalue()).json()["error"] == (
        attachments.IMAGE_TYPE_REFUSED.format(model="org/vision", mime="image/gif", name="a.gif")
    )
    too_long = upload(owner, cid, "long.md", b"word " * 100)  # 500 chars: ~125 tokens > 64
    assert too_long.status_code == 413
    assert "long.md does not fit in what org/vision reads" in too_long.json()["error"]
    binary = upload(owner, cid, "notes.txt", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    assert binary.json()["error"] == uploads.UNSUPPORTED_FILE.format(name="notes.txt")
    settings.CHATUI_ATTACHMENT_MAX_TEXT_BYTES = 10
    big = upload(owner, cid, "b.txt", b"x" * 11)
    assert big.status_code == 413 and "b.txt is too large" in big.json()["error"]
    assert not Attachment.objects.exists()


@pytest.mark.django_db
def test_files_are_private_shared_as_copies_exported_and_deleted(vision):
    owner, stranger = make_owner(), make_owner()
    cid = new_conversation(owner, VISION)
    file_id = upload(owner, cid, "cat.png", png_bytes()).json()["id"]
    request = services.message_send(
        identity=owner.identity, conversation_id=cid, content="look", attachments=[file_id]
    )
    services.message_finish(message_id=request.assistant_message.pk, content="A cat.")
    url = f"/api/attachments/{file_id}"
    mine = owner.client().get(url)
    assert mine.status_code == 200 and mine["Content-Type"] == "image/png"
    assert mine["X-Content-Type-Options"] == "nosniff"
    assert b"".join(mine.streaming_content) == png_bytes()
    assert stranger.client().get(url).status_code == 404
    assert Client().get(url).status_code == 404
    # Not even the stranger's own message can take it.
    other = new_conversation(stranger, VISION)
    with pytest.raises(services.ChatError, match=attachments.UNKNOWN_ATTACHMENT):
        services.message_send(
            identity=stranger.identity, conversation_id=other, content="x", attachments=[file_id]
        )

    export = owner.client().get("/api/export").json()
    exported = export["conversations"][0]["messages"][0]["files"][0]
    assert (exported["name"], base64.b64decode(exported["data"])) == ("cat.png", png_bytes())

    share = owner.client().post(f"/api/conversations/{cid}/share").json()
    page = Client().get(share["url"])
    shared_file = page.context["shared_json"]["messages"][0]["files"][0]
    assert shared_file["url"].startswith(f"/r/{share['share_id']}/files/")
    public = Client().get(shared_file["url"])
    assert public.status_code == 200 and b"".join(public.streaming_content) == png_bytes()
    copy_id = shared_file["id"]
    assert stranger.client().get(f"/api/attachments/{copy_id}").status_code == 404

    continued = stranger.client().post(f"/r/{share['share_id']}/continue")
    assert continued.status_code == 302
    mine_now = Attachment.objects.get(conversation__anon_key=stranger.identity.anon_key)
    assert stranger.client().get(f"/api/attachments/{mine_now.pk}").status_code == 200

    stored = Attachment.objects.get(pk=file_id)
    storage, name = stored.file.storage, stored.file.name
    assert owner.client().delete(f"/api/conversations/{cid}").status_code == 204
    assert not storage.exists(name) and not Attachment.objects.filter(pk=file_id).exists()
    assert Client().get(shared_file["url"]).status_code == 200  # the share keeps its copy
