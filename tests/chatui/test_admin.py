"""Django admin: conversations with their messages, search, and the Models status page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from chatui.admin import info_rows, usage_per_day
from chatui.models import Conversation, Message
from tests.chatui.helpers import MODEL_A, MODEL_B

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client = Client()
    client.force_login(admin)
    return client


def make_conversation(model: str, question: str, answer: str, tokens: int) -> Conversation:
    conversation = Conversation.objects.create(model=model, title=question[:20], anon_key="k")
    asked = Message.objects.create(conversation=conversation, role="user", content=question)
    Message.objects.create(
        conversation=conversation,
        parent=asked,
        role="assistant",
        content=answer,
        model=model,
        generated_tokens=tokens,
    )
    return conversation


def test_models_page_shows_endpoint_health_and_usage(endpoints, admin_client):
    make_conversation(MODEL_A, "first", "one", 10)
    make_conversation(MODEL_A, "second", "two", 5)
    make_conversation(MODEL_B, "third", "three", 7)
    response = admin_client.get("/admin/models/")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.context["models"]}
    assert set(models) == {MODEL_A, MODEL_B, "hidden"}
    tgi_status = models[MODEL_A]["endpoints"][0]["status"]
    assert tgi_status["ok"] is True and tgi_status["info"]["model_id"]
    rows = dict(models[MODEL_A]["endpoints"][0]["info_rows"])  # /info as rows, not a dict
    assert rows["model_id"] == tgi_status["info"]["model_id"]
    assert b"{&#x27;" not in response.content and b"{'" not in response.content
    assert models[MODEL_B]["endpoints"][0]["status"]["ok"] is True
    usage = {row["model"]: row for row in response.context["usage"]}
    assert (usage[MODEL_A]["conversations"], usage[MODEL_A]["generated_tokens"]) == (2, 15)
    assert (usage[MODEL_B]["conversations"], usage[MODEL_B]["generated_tokens"]) == (1, 7)
    assert b"Usage per model per day" in response.content
    assert usage_per_day()[0]["day"] is not None


def test_models_page_reports_an_endpoint_that_is_down(chat_models, admin_client):
    response = admin_client.get("/admin/models/")
    status = response.context["models"][0]["endpoints"][0]["status"]
    assert status["ok"] is False and status["error"]


def test_models_page_needs_staff(chat_models):
    assert Client().get("/admin/models/").status_code == 302


def test_conversation_admin_search_and_inline_messages(chat_models, admin_client):
    match = make_conversation(MODEL_A, "about volcanoes", "lava and magma", 3)
    make_conversation(MODEL_B, "about bread", "flour", 3)
    listing = admin_client.get("/admin/chatui/conversation/", {"q": "magma"})
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [match]
    listing = admin_client.get("/admin/chatui/conversation/", {"model": MODEL_B})
    assert [c.model for c in listing.context["cl"].result_list] == [MODEL_B]
    page = admin_client.get(f"/admin/chatui/conversation/{match.pk}/change/")
    assert page.status_code == 200
    assert b"lava and magma" in page.content
    assert admin_client.get("/admin/chatui/message/").status_code == 200
    assert admin_client.get("/admin/chatui/sharedconversation/").status_code == 200
    assert b"/admin/models/" in admin_client.get("/admin/").content


def test_endpoint_info_reads_as_rows() -> None:
    info = {"model_id": "m", "stops": ["</s>", "<|im_end|>"], "nested": {"a": 1}, "sha": None}
    assert info_rows(info) == [
        ("model_id", "m"),
        ("stops", "</s>, <|im_end|>"),
        ("nested", '{"a": 1}'),
        ("sha", ""),
    ]
    assert info_rows(None) == [] and info_rows("plain") == [("", "plain")]
