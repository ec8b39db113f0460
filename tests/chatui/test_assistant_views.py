"""Assistants (chat-ui's legacy line): a named preset of model + system prompt + up to four
conversation starters + an avatar; created by signed-in users, listed, started with one click,
shared by link; featured or removed in the admin, which counts their use."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from chatui import services
from chatui.models import Assistant, Conversation
from chatui.services import ASSISTANT_MODEL_GONE, AVATAR_NOT_AN_IMAGE, STARTERS_INVALID
from tests.chatui.helpers import MODEL_A, MODEL_B, make_owner

pytestmark = pytest.mark.django_db


def start_chat(client: Client, assistant: Assistant):
    """What the assistant's chat page does with the first message: create the conversation."""
    return client.post(
        "/api/conversations", {"assistant": str(assistant.pk)}, content_type="application/json"
    )


def png_bytes(size: tuple[int, int] = (8, 8), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def form_data(**overrides: object) -> dict[str, object]:
    data = {
        "name": "Code Reviewer",
        "description": "Reviews Python code.",
        "model": MODEL_B,
        "system_prompt": "You review Python code tersely.",
        "starter_0": "Review this function",
        "starter_1": "",
        "starter_2": "Explain this error",
        "starter_3": "",
    }
    return data | overrides


def test_a_signed_in_user_creates_an_assistant_anyone_can_open_and_start(chat_models):
    author = make_owner("author")
    client = author.client()
    avatar = SimpleUploadedFile("me.txt", png_bytes(), content_type="text/plain")  # name lies
    response = client.post("/assistants/new", form_data(avatar=avatar))
    assert response.status_code == 302
    assistant = Assistant.objects.get()
    assert response["Location"] == f"/assistant/{assistant.pk}"
    assert assistant.starters == ["Review this function", "Explain this error"]
    assert (assistant.model, assistant.avatar_mime) == (MODEL_B, "image/png")

    visitor = Client()  # anonymous, no session yet
    listing = visitor.get("/assistants")
    assert b"Code Reviewer" in listing.content and b"1 chat" not in listing.content
    page = visitor.get(f"/assistant/{assistant.pk}")
    assert page.status_code == 200 and b"Explain this error" in page.content
    avatar_response = visitor.get(f"/assistant/{assistant.pk}/avatar")
    assert avatar_response["Content-Type"] == "image/png"
    assert b"".join(avatar_response.streaming_content) == png_bytes()

    # "Start a chat" only opens the assistant's chat: nothing is stored before a message.
    opened = visitor.post(f"/assistant/{assistant.pk}/start")
    assert opened["Location"] == f"/?assistant={assistant.pk}"
    chat_page = visitor.get(opened["Location"])
    assert chat_page.context["assistant_json"]["name"] == "Code Reviewer"
    assert not Conversation.objects.exists()
    assert visitor.get("/?assistant=not-an-id").context["assistant_json"] is None

    started = start_chat(visitor, assistant)
    conversation = Conversation.objects.get(assistant=assistant)
    assert started.status_code == 201 and started.json()["id"] == str(conversation.pk)
    assert (conversation.model, conversation.system_prompt) == (
        MODEL_B,
        "You review Python code tersely.",
    )
    detail = visitor.get(f"/api/conversations/{conversation.pk}").json()
    assert detail["assistant"]["name"] == "Code Reviewer"
    assert detail["assistant"]["starters"] == ["Review this function", "Explain this error"]
    assert detail["assistant"]["avatar_url"] == f"/assistant/{assistant.pk}/avatar"
    assert b"1 chat" in visitor.get("/assistants").content


def test_creating_needs_an_account_and_the_form_says_what_is_wrong(chat_models):
    assert Client().get("/assistants/new").status_code == 302  # to the login page
    client = make_owner("author").client()
    response = client.post("/assistants/new", form_data(avatar=SimpleUploadedFile("a.png", b"x")))
    assert response.status_code == 400 and AVATAR_NOT_AN_IMAGE in response.content.decode()
    response = client.post("/assistants/new", form_data(model="hidden"))
    assert response.status_code == 200 and b"hidden is not one of" in response.content
    assert not Assistant.objects.exists()
    with pytest.raises(services.ChatError, match=STARTERS_INVALID):
        services.assistant_save(
            user=get_user_model().objects.get(), name="x", model=MODEL_A, starters=["a"] * 5
        )


def test_only_the_owner_edits_or_deletes_and_the_avatar_file_goes_with_it(chat_models):
    author, other = make_owner("author"), make_owner("other")
    avatar = SimpleUploadedFile("a.png", png_bytes())
    author.client().post("/assistants/new", form_data(avatar=avatar))
    assistant = Assistant.objects.get()
    storage, avatar_name = assistant.avatar.storage, assistant.avatar.name
    assert storage.exists(avatar_name)
    intruder = other.client()
    assert intruder.get(f"/assistant/{assistant.pk}/edit").status_code == 404
    assert intruder.post(f"/assistant/{assistant.pk}/delete").status_code == 404
    edited = author.client().post(f"/assistant/{assistant.pk}/edit", form_data(name="Renamed"))
    assert edited.status_code == 302
    assistant.refresh_from_db()
    assert assistant.name == "Renamed" and assistant.avatar.name == avatar_name
    assert start_chat(author.client(), assistant).status_code == 201
    assert author.client().post(f"/assistant/{assistant.pk}/delete").status_code == 302
    assert not Assistant.objects.exists() and not storage.exists(avatar_name)
    # The chat stays, with the assistant's model and instructions.
    assert Conversation.objects.get().system_prompt == "You review Python code tersely."


def test_an_assistant_whose_model_is_gone_cannot_be_started(chat_models):
    author = make_owner("author")
    assistant = services.assistant_save(user=author.user, name="Old", model=MODEL_B)
    Assistant.objects.filter(pk=assistant.pk).update(model="retired")
    response = start_chat(Client(), assistant)
    assert response.status_code == 400 and response.json()["error"] == ASSISTANT_MODEL_GONE


def test_admin_features_assistants_and_counts_their_use(chat_models):
    author = make_owner("author")
    busy = services.assistant_save(user=author.user, name="Busy", model=MODEL_A)
    services.assistant_save(user=author.user, name="Quiet", model=MODEL_A)
    for _ in range(2):
        services.conversation_create(identity=make_owner().identity, assistant=busy)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/chatui/assistant/")
    counts = {a.name: a.num_conversations for a in listing.context["cl"].result_list}
    assert counts == {"Busy": 2, "Quiet": 0}
    client.post(
        "/admin/chatui/assistant/", {"action": "feature", "_selected_action": [str(busy.pk)]}
    )
    busy.refresh_from_db()
    assert busy.is_featured
    page = Client().get("/assistants")
    assert [a.name for a in page.context["featured"]] == ["Busy"]
    assert [a.name for a in page.context["assistants"]] == ["Quiet"]
