"""Feedback on answers: the owner's thumbs up/down (chat-ui's message score), stored, shown in
the admin with the conversation, filterable, and exported as JSONL."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from chatui.models import Conversation, Message
from chatui.services import NOT_SCORABLE, SCORE_INVALID
from tests.chatui.helpers import MODEL_A, MODEL_B, make_owner

pytestmark = pytest.mark.django_db


def rated_conversation(owner, question: str, answer: str, model: str = MODEL_A):
    conversation = Conversation.objects.create(model=model, **owner.identity.owner_fields())
    asked = Message.objects.create(conversation=conversation, role="user", content=question)
    answered = Message.objects.create(
        conversation=conversation, parent=asked, role="assistant", content=answer, model=model
    )
    return conversation, asked, answered


def score_url(conversation, message) -> str:
    return f"/api/conversations/{conversation.pk}/messages/{message.pk}/score"


def test_owner_rates_an_answer_and_the_snapshot_shows_it(chat_models):
    owner = make_owner()
    conversation, _, answered = rated_conversation(owner, "2+2?", "4")
    client = owner.client()
    response = client.post(score_url(conversation, answered), {"score": 1}, "application/json")
    assert response.status_code == 200 and response.json()["score"] == 1
    detail = client.get(f"/api/conversations/{conversation.pk}").json()
    assert [m["score"] for m in detail["messages"]] == [0, 1]

    client.post(score_url(conversation, answered), {"score": 0}, "application/json")
    answered.refresh_from_db()
    assert answered.score == 0


@pytest.mark.parametrize("score", [2, "1", True, None, 0.5])
def test_a_wrong_score_is_refused(chat_models, score):
    owner = make_owner()
    conversation, _, answered = rated_conversation(owner, "q", "a")
    response = owner.client().post(
        score_url(conversation, answered), {"score": score}, "application/json"
    )
    assert response.status_code == 400 and response.json() == {"error": SCORE_INVALID}


def test_only_answers_of_ones_own_conversations_can_be_rated(chat_models):
    owner, stranger = make_owner(), make_owner()
    conversation, asked, answered = rated_conversation(owner, "q", "a")
    response = owner.client().post(score_url(conversation, asked), {"score": 1}, "application/json")
    assert response.json() == {"error": NOT_SCORABLE}
    response = stranger.client().post(
        score_url(conversation, answered), {"score": -1}, "application/json"
    )
    assert response.status_code == 404
    answered.refresh_from_db()
    assert answered.score == 0


def test_admin_lists_filters_and_exports_feedback_as_jsonl(chat_models):
    owner = make_owner()
    _, _, good = rated_conversation(owner, "Capital of France?", "Paris.")
    _, _, bad = rated_conversation(owner, "Capital of Spain?", "Lisbon.", model=MODEL_B)
    rated_conversation(owner, "Unrated?", "Yes.")
    Message.objects.filter(pk=good.pk).update(score=1)
    Message.objects.filter(pk=bad.pk).update(score=-1)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client = Client()
    client.force_login(admin)

    listing = client.get("/admin/chatui/feedback/")
    assert listing.status_code == 200
    assert {m.pk for m in listing.context["cl"].result_list} == {good.pk, bad.pk}
    down = client.get("/admin/chatui/feedback/?score__exact=-1")
    assert [m.pk for m in down.context["cl"].result_list] == [bad.pk]
    assert client.get(f"/admin/chatui/feedback/{bad.pk}/change/").status_code == 200

    export = client.get("/admin/feedback.jsonl")
    assert export["Content-Type"].startswith("application/jsonl")
    rows = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
    by_score = {row["score"]: row for row in rows}
    assert set(by_score) == {1, -1}
    assert (by_score[1]["prompt"], by_score[1]["answer"], by_score[1]["model"]) == (
        "Capital of France?",
        "Paris.",
        MODEL_A,
    )
    assert (by_score[-1]["prompt"], by_score[-1]["answer"], by_score[-1]["model"]) == (
        "Capital of Spain?",
        "Lisbon.",
        MODEL_B,
    )
    only_up = client.get("/admin/feedback.jsonl?score=1")
    assert len(b"".join(only_up.streaming_content).splitlines()) == 1

    action = client.post(
        "/admin/chatui/feedback/",
        {"action": "export_jsonl", "_selected_action": [str(bad.pk)]},
    )
    lines = b"".join(action.streaming_content).splitlines()
    assert [json.loads(line)["message_id"] for line in lines] == [str(bad.pk)]

    assert Client().get("/admin/feedback.jsonl").status_code == 302  # staff only
