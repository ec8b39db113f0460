"""Hostile input over HTTP and the websocket: NUL characters (Postgres refuses them), JSON nested
past the parser's recursion limit, oversized bodies, wrong JSON types and odd frames. Each gets
a readable JSON error or an `error` event; nothing is stored, nothing answers 500, no socket
closes with 1011."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from chatui import api, limits, services
from chatui.consumers import (
    BINARY_FRAME,
    CLOSE_TOO_BIG,
    MAX_MESSAGE_BYTES,
    NOT_AN_OBJECT,
    UNKNOWN_TYPE,
)
from chatui.errors import ChatError
from chatui.models import Conversation, Message, SharedConversation, UserSettings
from chatui.validation import BODY_TOO_LARGE, NUL_CHARACTER, TOO_DEEP
from tests.chatui.helpers import MODEL_A, TIMEOUT, connect, db, make_owner, receive_until

NUL = "a\x00b"
DEEP = "[" * 100_000 + "]" * 100_000


def call(
    client: Client, method: str, url: str, body: Any = None, *, raw: str | bytes | None = None
):
    data = raw if raw is not None else json.dumps(body)
    return getattr(client, method)(url, data, content_type="application/json")


def stored_state() -> list[Any]:
    """Every row the API could have written, as plain values."""
    return [
        list(Conversation.objects.order_by("pk").values()),
        list(Message.objects.order_by("pk").values()),
        list(UserSettings.objects.order_by("pk").values()),
        list(SharedConversation.objects.order_by("pk").values()),
    ]


@pytest.fixture
def visitor(chat_models) -> tuple[Client, str]:
    """A visitor with one conversation holding one exchange (so it can be shared)."""
    client = Client(raise_request_exception=False)
    cid = call(client, "post", "/api/conversations", {}).json()["id"]
    conversation = Conversation.objects.get(pk=cid)
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    Message.objects.create(conversation=conversation, parent=question, role="assistant")
    return client, cid


NUL_BODIES: list[tuple[str, str, Callable[[str], dict[str, Any]]]] = [
    ("post", "/api/conversations", lambda cid: {"system_prompt": NUL}),
    ("post", "/api/conversations", lambda cid: {"model": NUL}),
    ("patch", "/api/conversations/{cid}", lambda cid: {"title": NUL}),
    ("patch", "/api/conversations/{cid}", lambda cid: {"system_prompt": NUL}),
    ("patch", "/api/settings", lambda cid: {"custom_prompts": {MODEL_A: NUL}}),
    ("patch", "/api/settings", lambda cid: {"custom_prompts": {NUL: "x"}}),
    ("patch", "/api/settings", lambda cid: {"theme": NUL, "extra": [{"deep": NUL}]}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url", "body"), NUL_BODIES)
def test_a_nul_character_in_a_body_is_refused(visitor, method, url, body):
    client, cid = visitor
    before = stored_state()
    response = call(client, method, url.format(cid=cid), body(cid))
    assert response.status_code == 400
    assert response.json() == {"error": NUL_CHARACTER}
    assert stored_state() == before


@pytest.mark.django_db
def test_a_nul_character_in_a_search_or_a_share_id_is_not_a_server_error(visitor):
    client, cid = visitor
    response = client.get("/api/conversations", {"q": NUL})
    assert (response.status_code, response.json()) == (400, {"error": NUL_CHARACTER})
    share_id = call(client, "post", f"/api/conversations/{cid}/share", {}).json()["share_id"]
    for path in (f"/r/{share_id}%00", "/r/%00", "/r/" + "x" * 5000):
        assert client.get(path).status_code == 404
        assert client.post(path + "/continue").status_code == 404
    assert client.get(f"/r/{share_id}").status_code == 200


@pytest.mark.django_db
def test_a_nul_character_in_the_session_cookie_is_no_session(visitor):
    client, _ = visitor
    client.cookies[settings.SESSION_COOKIE_NAME] = "abcdefgh\x00ijkl"
    assert client.get("/").status_code == 200
    assert client.get("/api/conversations").json() == {"conversations": []}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url", "fields"),
    [
        ("post", "/api/conversations", ("model", "system_prompt")),
        ("patch", "/api/conversations/{cid}", ("title", "model", "system_prompt")),
        ("patch", "/api/settings", ("active_model", "custom_prompts", "theme")),
    ],
)
def test_deeply_nested_json_is_refused(visitor, method, url, fields):
    client, cid = visitor
    before = stored_state()
    for raw in (DEEP, '{"title": ' + DEEP + "}"):
        response = call(client, method, url.format(cid=cid), raw=raw)
        assert (response.status_code, response.json()) == (400, {"error": TOO_DEEP})
    # Nested just under the parser's limit: parsed, then refused as the wrong type (the error
    # message does not echo the value back).
    nested = "[" * 500 + "]" * 500
    for field in fields:
        response = call(client, method, url.format(cid=cid), raw=f'{{"{field}": {nested}}}')
        assert response.status_code == 400, (field, response.content)
        assert len(response.content) < 200
    assert stored_state() == before


@pytest.mark.django_db
def test_a_body_over_the_upload_limit_gets_the_json_error(visitor, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client, cid = visitor
    big = json.dumps({"system_prompt": "x" * 2000})
    response = call(client, "patch", f"/api/conversations/{cid}", raw=big)
    assert (response.status_code, response.json()) == (413, {"error": BODY_TOO_LARGE})
    # A form-encoded body is read by the CSRF middleware, before any view.
    strict = Client(enforce_csrf_checks=True)
    strict.get("/")  # the CSRF cookie: the token is then read from the body
    response = strict.post("/api/conversations", {"csrfmiddlewaretoken": "x" * 2000})
    assert (response.status_code, response.json()) == (413, {"error": BODY_TOO_LARGE})
    assert Conversation.objects.get(pk=cid).system_prompt == "You are model A."


@pytest.mark.django_db
def test_api_errors_are_json_everywhere(visitor):
    client, cid = visitor
    response = client.put(f"/api/conversations/{cid}", "{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "GET, PATCH, DELETE"
    assert response.json() == {
        "error": api.METHOD_NOT_ALLOWED.format(method="PUT", allowed="GET, PATCH, DELETE")
    }
    response = client.get("/api/nothing-here")
    assert (response.status_code, response.json()) == (404, {"error": api.NOT_FOUND})
    response = Client(enforce_csrf_checks=True).post("/api/conversations", "{}", "text/plain")
    assert response.status_code == 403
    assert response.json()["error"].startswith("The request was refused (CSRF check failed")
    for body in ("[1]", "null", "not json", b"\xff\xfe"):
        response = call(client, "post", "/api/conversations", raw=body)
        assert (response.status_code, response.json()) == (400, {"error": api.INVALID_JSON})
    # A wrong value is never echoed back whole.
    for model in ("m" * 100_000, 10**4000):
        response = call(client, "post", "/api/conversations", {"model": model})
        assert response.status_code == 400 and len(response.content) < 200
    response = call(client, "post", "/api/conversations", {"model": {"a": [1]}})
    assert response.json() == {"error": services.UNKNOWN_MODEL.format(model="an object")}


# --- the websocket -------------------------------------------------------------------------


async def open_socket():
    owner = await db(make_owner)()
    cid = await db(
        lambda: str(services.conversation_create(identity=owner.identity, model=MODEL_A).pk)
    )()
    return cid, await connect(owner, cid)


async def expect_error(socket, message: str) -> None:
    event = await socket.receive_json_from(timeout=TIMEOUT)
    assert event == {"type": "error", "message": message, "message_id": None}


@pytest.mark.django_db(transaction=True)
async def test_odd_frames_get_error_events_and_the_socket_stays_usable(endpoints):
    cid, socket = await open_socket()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"text": "[1, 2]"}, NOT_AN_OBJECT),
        ({"text": '"send"'}, NOT_AN_OBJECT),
        ({"text": "null"}, NOT_AN_OBJECT),
        ({"text": ""}, UNKNOWN_TYPE.format(type=None)),
        ({"text": DEEP}, TOO_DEEP),
        ({"text": '{"type": {"a": 1}}'}, UNKNOWN_TYPE.format(type="an object")),
        ({"text": '{"type": ["send"]}'}, UNKNOWN_TYPE.format(type="a list")),
        ({"text": '{"type": 7}'}, UNKNOWN_TYPE.format(type="7")),
        ({"text": '{"content": "no type"}'}, UNKNOWN_TYPE.format(type="null")),
        ({"bytes": b'{"type": "stop"}'}, BINARY_FRAME),
        ({"bytes": b"\xff\x00"}, BINARY_FRAME),
    ]
    for frame, message in cases:
        await socket.send_input({"type": "websocket.receive", **frame})
        await expect_error(socket, message)
    nul_requests = [
        {"type": "send", "content": NUL, "parent_id": None},
        {"type": "send", "content": "hi", "parent_id": None, "model": NUL},
        {"type": "edit", "message_id": NUL, "content": "x"},
        {"type": "regenerate", "message_id": "x\x00"},
        {"type": "continue", "message_id": "\x00"},
    ]
    for request in nul_requests:
        await socket.send_json_to(request)
        await expect_error(socket, NUL_CHARACTER)
    await socket.send_json_to({"type": "send", "content": "hi", "parent_id": None})
    final = (await receive_until(socket, "final"))[-1]["message"]
    assert final["content"] == "Hello, world!"
    await receive_until(socket, "status", status="done")
    assert await db(Message.objects.filter(conversation_id=cid).count)() == 2
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_frame_over_one_mebibyte_closes_with_1009(endpoints):
    _, socket = await open_socket()
    await socket.send_to(text_data="é" * (MAX_MESSAGE_BYTES // 2 + 1))  # 2 bytes each
    assert await socket.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": CLOSE_TOO_BIG,
    }


@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_visitor_has_default_limits(endpoints):
    cid, socket = await open_socket()
    length = limits.ANONYMOUS_DEFAULTS.message_length
    content = "x" * (length + 1)
    await socket.send_json_to({"type": "send", "content": content, "parent_id": None})
    await expect_error(socket, limits.MESSAGE_TOO_LONG.format(length=length + 1, limit=length))
    assert await db(Message.objects.filter(conversation_id=cid).count)() == 0
    await socket.disconnect()


@pytest.mark.django_db
def test_default_limits_fill_only_what_usage_limits_leaves_unset(chat_models):
    anonymous, user = make_owner(), make_owner("limited")
    config = chat_models()
    assert limits.effective_limits(identity=anonymous.identity, config=config) == (
        limits.ANONYMOUS_DEFAULTS
    )
    assert limits.effective_limits(identity=user.identity, config=config).message_length is None
    config = chat_models(USAGE_LIMITS='{"messageLength": 50, "messagesPerMinute": 0}')
    effective = limits.effective_limits(identity=anonymous.identity, config=config)
    assert (effective.message_length, effective.messages_per_minute) == (50, 0)
    assert effective.concurrent_generations == limits.ANONYMOUS_DEFAULTS.concurrent_generations
    # 0 turns a limit off: a long message passes.
    limits.check_message_length(
        identity=anonymous.identity,
        content="y" * (limits.ANONYMOUS_DEFAULTS.message_length + 1),
        config=chat_models(USAGE_LIMITS='{"messageLength": 0}'),
    )
    with pytest.raises(ChatError):
        limits.check_message_length(identity=anonymous.identity, content="y" * 51, config=config)
