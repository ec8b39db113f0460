"""The JSON API and pages over HTTP: ownership, validation, export, share, search, login."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from chatui import limits, services
from chatui.api import INVALID_JSON
from chatui.identity import Identity
from chatui.models import Conversation, Message, UserSettings
from chatui.selectors import CONVERSATION_NOT_FOUND
from chatui.services import user_settings
from tests.chatui.helpers import MODEL_A, MODEL_B, make_owner

pytestmark = pytest.mark.django_db


def post(client: Client, url: str, body: object = None, method: str = "post"):
    data = json.dumps(body) if body is not None else ""
    return getattr(client, method)(url, data, content_type="application/json")


def new_conversation(client: Client, **body: object) -> dict:
    response = post(client, "/api/conversations", body)
    assert response.status_code == 201, response.content
    return response.json()


def add_exchange(conversation_id: str, question: str, answer: str) -> tuple[Message, Message]:
    conversation = Conversation.objects.get(pk=conversation_id)
    user_message = Message.objects.create(conversation=conversation, role="user", content=question)
    reply = Message.objects.create(
        conversation=conversation,
        parent=user_message,
        role="assistant",
        content=answer,
        model=conversation.model,
    )
    return user_message, reply


def test_models_lists_listed_models_and_the_active_one(chat_models):
    data = Client().get("/api/models").json()
    assert [m["id"] for m in data["models"]] == [MODEL_A, MODEL_B]
    assert data["active_model"] == MODEL_A
    assert data["models"][0]["displayName"] == "Model A"


def test_chat_page_gives_an_anonymous_visitor_an_identity(chat_models):
    client = Client()
    response = client.get("/")
    assert response.status_code == 200
    assert response.context["conversation_id"] is None
    assert response.context["active_model"] == MODEL_A
    assert [m["id"] for m in response.context["models_json"]] == [MODEL_A, MODEL_B]
    conversation = new_conversation(client)
    assert client.get(f"/conversation/{conversation['id']}").status_code == 200
    # The same visitor sees it in the list.
    listed = client.get("/api/conversations").json()["conversations"]
    assert [c["id"] for c in listed] == [conversation["id"]]


def test_create_uses_active_model_and_its_prompt(chat_models):
    client = Client()
    conversation = new_conversation(client)
    assert conversation["model"] == MODEL_A
    assert conversation["system_prompt"] == "You are model A."
    assert conversation["messages"] == []
    post(client, "/api/settings", {"active_model": MODEL_B}, "patch")
    post(client, "/api/settings", {"custom_prompts": {MODEL_B: "Be brief."}}, "patch")
    conversation = new_conversation(client)
    assert (conversation["model"], conversation["system_prompt"]) == (MODEL_B, "Be brief.")


def test_create_refuses_unlisted_and_unknown_models(chat_models):
    client = Client()
    for model in ("hidden", "nope", 3):
        response = post(client, "/api/conversations", {"model": model})
        assert response.status_code == 400
        assert response.json() == {"error": services.UNKNOWN_MODEL.format(model=model)}
    response = client.post("/api/conversations", "[1]", content_type="application/json")
    assert response.json() == {"error": INVALID_JSON}


def test_nobody_else_can_touch_a_conversation(chat_models):
    alice = make_owner()
    conversation = new_conversation(alice.client())
    add_exchange(conversation["id"], "secret question", "secret answer")
    cid = conversation["id"]
    for intruder in (make_owner(), make_owner("mallory"), None):
        client = intruder.client() if intruder else Client()
        assert client.get(f"/conversation/{cid}").status_code == 404
        for method, url, body in (
            ("get", f"/api/conversations/{cid}", None),
            ("patch", f"/api/conversations/{cid}", {"title": "mine"}),
            ("delete", f"/api/conversations/{cid}", None),
            ("post", f"/api/conversations/{cid}/share", None),
        ):
            response = post(client, url, body, method)
            assert response.status_code == 404, (method, url)
            assert response.json() == {"error": CONVERSATION_NOT_FOUND}
        assert client.get("/api/conversations").json() == {"conversations": []}
        assert client.get("/api/conversations?q=secret").json() == {"conversations": []}
        assert client.get("/api/export").json() == {"conversations": []}
        assert post(client, "/api/conversations", None, "delete").status_code == 204
    data = alice.client().get(f"/api/conversations/{cid}").json()
    assert data["title"] == "New Chat"
    assert [m["content"] for m in data["messages"]] == ["secret question", "secret answer"]


def test_rename_validation(chat_models):
    client = Client()
    cid = new_conversation(client)["id"]
    for title in ("", "   ", "x" * 101, 42):
        response = post(client, f"/api/conversations/{cid}", {"title": title}, "patch")
        assert response.status_code == 400
        assert response.json() == {"error": services.TITLE_INVALID}
    response = post(client, f"/api/conversations/{cid}", {"title": " Trip plans "}, "patch")
    assert response.status_code == 200
    assert response.json()["title"] == "Trip plans"
    response = post(client, f"/api/conversations/{cid}", {"title": "y" * 100}, "patch")
    assert response.json()["title"] == "y" * 100


def test_patch_switches_model_and_system_prompt(chat_models):
    client = Client()
    cid = new_conversation(client)["id"]
    body = {"model": MODEL_B, "system_prompt": "Answer in French."}
    data = post(client, f"/api/conversations/{cid}", body, "patch").json()
    assert (data["model"], data["system_prompt"]) == (MODEL_B, "Answer in French.")
    response = post(client, f"/api/conversations/{cid}", {"model": "hidden"}, "patch")
    assert response.status_code == 400


def test_delete_one_and_delete_all_only_touch_own_conversations(chat_models):
    alice, bob = make_owner(), make_owner()
    a1, a2 = new_conversation(alice.client()), new_conversation(alice.client())
    b1 = new_conversation(bob.client())
    assert post(alice.client(), f"/api/conversations/{a1['id']}", None, "delete").status_code == 204
    assert not Conversation.objects.filter(pk=a1["id"]).exists()
    assert post(alice.client(), "/api/conversations", None, "delete").status_code == 204
    assert not Conversation.objects.filter(pk=a2["id"]).exists()
    assert Conversation.objects.filter(pk=b1["id"]).exists()


def test_list_is_newest_first_and_search_matches_titles_and_contents(chat_models):
    client = Client()
    first = new_conversation(client)["id"]
    second = new_conversation(client)["id"]
    post(client, f"/api/conversations/{first}", {"title": "Bread recipes"}, "patch")
    add_exchange(second, "How do volcanoes erupt?", "Magma rises. Volcano facts.")
    add_exchange(second, "More about volcanoes", "Lava.")
    listed = client.get("/api/conversations").json()["conversations"]
    assert [c["id"] for c in listed] == [first, second]  # the rename touched `first` last
    assert set(listed[0]) == {"id", "title", "model", "updated_at", "is_generating"}
    search = client.get("/api/conversations", {"q": "VOLCANO"}).json()["conversations"]
    assert [c["id"] for c in search] == [second]  # once, though many messages match
    search = client.get("/api/conversations", {"q": "bread"}).json()["conversations"]
    assert [c["id"] for c in search] == [first]
    assert client.get("/api/conversations", {"q": "zebra"}).json() == {"conversations": []}


def test_export_downloads_every_conversation_with_its_tree(chat_models):
    client = Client()
    cid = new_conversation(client)["id"]
    question, _ = add_exchange(cid, "Q", "A")
    response = client.get("/api/export")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    exported = json.loads(response.content)["conversations"]
    assert [c["id"] for c in exported] == [cid]
    messages = exported[0]["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [("user", "Q"), ("assistant", "A")]
    assert messages[1]["parent_id"] == str(question.id)


def test_share_snapshot_is_read_only_and_can_be_continued(chat_models):
    alice, bob = make_owner(), make_owner()
    cid = new_conversation(alice.client())["id"]
    response = post(alice.client(), f"/api/conversations/{cid}/share")
    assert response.status_code == 400  # nothing to share yet
    add_exchange(cid, "Shared question", "Shared answer")
    shared = post(alice.client(), f"/api/conversations/{cid}/share").json()
    assert shared["url"] == f"/r/{shared['share_id']}"
    assert 7 <= len(shared["share_id"]) <= 10
    add_exchange(cid, "Later question", "Later answer")  # not part of the snapshot

    page = bob.client().get(shared["url"])
    assert page.status_code == 200
    contents = [m["content"] for m in page.context["shared_json"]["messages"]]
    assert contents == ["Shared question", "Shared answer"]
    assert Client().get("/r/doesnotexist").status_code == 404

    response = bob.client().post(f"{shared['url']}/continue")
    assert response.status_code == 302
    new_id = response["Location"].rsplit("/", 1)[1]
    assert new_id != cid
    copy = bob.client().get(f"/api/conversations/{new_id}").json()
    assert [m["content"] for m in copy["messages"]] == ["Shared question", "Shared answer"]
    assert copy["messages"][1]["parent_id"] == copy["messages"][0]["id"]
    # Alice's conversation is untouched; the copy is Bob's only.
    assert alice.client().get(f"/api/conversations/{new_id}").status_code == 404
    assert Message.objects.filter(conversation_id=cid).count() == 4

    # The branch on the sharer's screen is kept with the snapshot; a stranger's id is refused.
    first_answer = Message.objects.get(conversation_id=cid, content="Shared answer")
    url = f"/api/conversations/{cid}/share"
    shown = post(alice.client(), url, {"leaf_id": str(first_answer.pk)}).json()
    page = Client().get(shown["url"])
    assert page.context["shared_json"]["leaf_id"] == str(first_answer.pk)
    refused = post(alice.client(), url, {"leaf_id": "not-a-message"})
    assert refused.json() == {"error": services.SHARE_LEAF_UNKNOWN}


def test_settings_validation(chat_models):
    client = Client()
    assert client.get("/api/settings").json() == {
        "active_model": MODEL_A,
        "custom_prompts": {},
        "theme": "system",
    }
    for body, error in (
        ({"theme": "neon"}, services.THEME_INVALID),
        ({"active_model": "hidden"}, services.UNKNOWN_MODEL.format(model="hidden")),
        ({"custom_prompts": {MODEL_A: 3}}, services.CUSTOM_PROMPTS_INVALID),
        ({"custom_prompts": {"zzz": "x"}}, services.UNKNOWN_MODEL.format(model="zzz")),
    ):
        response = post(client, "/api/settings", body, "patch")
        assert (response.status_code, response.json()) == (400, {"error": error})
    body = {"theme": "dark", "active_model": MODEL_B, "custom_prompts": {MODEL_A: "Hi"}}
    data = post(client, "/api/settings", body, "patch").json()
    assert data == {"active_model": MODEL_B, "custom_prompts": {MODEL_A: "Hi"}, "theme": "dark"}
    # An empty prompt removes the custom one.
    data = post(client, "/api/settings", {"custom_prompts": {MODEL_A: ""}}, "patch").json()
    assert data["custom_prompts"] == {}


def test_overlapping_settings_updates_keep_each_others_fields(chat_models, monkeypatch):
    """One update reads the row, another writes other fields, then the first writes: both
    survive (the page once lost its active model to a prompt saved at the same moment)."""
    identity = Identity(anon_key="overlap")
    services.settings_update(identity=identity, theme="light")
    listed_model_id = user_settings.listed_model_id

    def overlapped(model_id):
        monkeypatch.setattr(user_settings, "listed_model_id", listed_model_id)
        services.settings_update(
            identity=identity, theme="dark", custom_prompts={MODEL_A: "Be brief."}
        )
        return listed_model_id(model_id)

    monkeypatch.setattr(user_settings, "listed_model_id", overlapped)
    services.settings_update(identity=identity, active_model=MODEL_B)
    settings = UserSettings.objects.get(anon_key="overlap")
    assert (settings.active_model, settings.theme) == (MODEL_B, "dark")
    assert settings.custom_prompts == {MODEL_A: "Be brief."}
    assert UserSettings.objects.count() == 1


def test_mutating_calls_need_the_csrf_token(chat_models):
    client = Client(enforce_csrf_checks=True)
    client.get("/")
    assert post(client, "/api/conversations", {}).status_code == 403
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/conversations", "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_login_moves_anonymous_conversations_and_settings(chat_models):
    user = get_user_model().objects.create_user("ann", password="pw-123456")
    client = Client()
    cid = new_conversation(client)["id"]
    post(client, "/api/settings", {"theme": "dark"}, "patch")
    response = client.post("/login", {"username": "ann", "password": "pw-123456"})
    assert response.status_code == 302
    conversation = Conversation.objects.get(pk=cid)
    assert (conversation.user_id, conversation.anon_key) == (user.pk, "")
    assert UserSettings.objects.get(user=user).theme == "dark"
    assert [c["id"] for c in client.get("/api/conversations").json()["conversations"]] == [cid]
    # After logout the visitor is a new anonymous identity: nothing is visible.
    client.post("/logout")
    assert client.get("/api/conversations").json() == {"conversations": []}
    assert client.get(f"/api/conversations/{cid}").status_code == 404


def test_signup_logs_in_and_keeps_anonymous_work(chat_models):
    client = Client()
    cid = new_conversation(client)["id"]
    assert client.get("/signup").status_code == 200
    response = client.post(
        "/signup",
        {"username": "neo", "password1": "x-Very-long-pw1", "password2": "x-Very-long-pw1"},
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="neo")
    assert Conversation.objects.get(pk=cid).user == user


def test_conversation_limit(chat_models):
    chat_models(USAGE_LIMITS='{"conversations": 2}')
    client = Client()
    new_conversation(client)
    new_conversation(client)
    response = post(client, "/api/conversations", {})
    assert response.status_code == 429
    assert response.json() == {"error": limits.TOO_MANY_CONVERSATIONS.format(limit=2)}
    assert new_conversation(Client())["id"]  # someone else is not limited by it
