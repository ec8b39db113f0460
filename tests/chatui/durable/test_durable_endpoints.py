"""Endpoint failures as a user meets them, through the chat websocket: fake TGI servers on real
sockets that refuse, fail with 5xx, hang, reject with 422 or break mid-answer. Before the first
token another endpoint of the model takes over; after it, or when every endpoint failed, the
answer shows a readable error, the user's message is kept and Retry works."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatui import services
from chatui.endpoints import ERR_CONNECT, ERR_CONNECTION_LOST, ERR_SERVER, ERR_TIMEOUT
from chatui.models import Message
from tests.chatui.fake_endpoints import (
    TGI_GENERATION_ERROR,
    TGI_VALIDATION_ERROR,
    FakeTGI,
    Script,
    unused_url,
)
from tests.chatui.helpers import connect, db, make_owner, merge_tokens, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "durable-model"
ANSWER = "Hello, world!"  # FakeTGI's default script
FIRST = 1_000_000  # an endpoint weight that makes it the first choice (1 in a million not)


def tgi(server: FakeTGI | str, weight: int = 1) -> dict[str, Any]:
    return {
        "type": "tgi",
        "url": server if isinstance(server, str) else server.url,
        "weight": weight,
    }


@pytest.fixture
def use_endpoints(configure, settings, endpoint_health):
    """`use_endpoints(*endpoints)`: one model served by these endpoints; a hang is given up
    after half a second."""
    settings.CHATUI_ENDPOINT_TIMEOUT_S = 0.5

    def apply(*endpoints: dict[str, Any]) -> None:
        model = {
            "id": MODEL,
            "name": "org/durable-model",
            "parameters": {"max_new_tokens": 64, "stop": ["<|im_end|>"]},
            "endpoints": list(endpoints),
        }
        configure(MODELS=json.dumps([model]), LLM_SUMMARIZATION="false")

    return apply


async def open_conversation(username: str | None = None):
    """A socket on a new conversation of an anonymous visitor (or of user `username`)."""
    owner = await db(make_owner)(username)
    conversation = await db(services.conversation_create)(identity=owner.identity, model=MODEL)
    return await connect(owner, conversation.pk), str(conversation.pk)


async def ask(socket, content: str, parent_id: str | None = None) -> list[dict[str, Any]]:
    """Events of one answer, from the user's message to the status after `final`."""
    await socket.send_json_to({"type": "send", "content": content, "parent_id": parent_id})
    events = await receive_until(socket, "final")
    return events + await receive_until(socket, "status")


def stored(conversation_id: str) -> list[tuple[str, str, str]]:
    rows = Message.objects.filter(conversation_id=conversation_id).order_by("created_at")
    return [(m.role, m.content, m.error) for m in rows]


FAILURES = {
    "refused": None,
    "500": Script(fail="status", status=500),
    "503": Script(fail="status", status=503),
    "hang": Script(fail="hang", hang_seconds=30),
    "error event": Script(fail="error_event", fail_after=0),
    "dropped": Script(fail="drop", fail_after=0),
}


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_failure_before_the_first_token_moves_to_another_endpoint(
    failure, fake_tgi, use_endpoints
):
    broken = unused_url() if FAILURES[failure] is None else fake_tgi(FAILURES[failure])
    good = fake_tgi()
    use_endpoints(tgi(broken, weight=FIRST), tgi(good))
    socket, _ = await open_conversation()

    events = await ask(socket, "Hi")

    final = events[-2]["message"]
    assert (final["content"], final["error"], final["interrupted"]) == (ANSWER, None, False)
    assert merge_tokens("", events, final["id"]) == ANSWER
    assert not [e for e in events if e["type"] == "error"]
    assert len(good.generation_requests) == 1
    if isinstance(broken, FakeTGI):
        assert len(broken.generation_requests) == 1  # tried first, once
    await socket.disconnect()


async def test_a_422_shows_the_endpoints_own_message_and_is_not_retried(fake_tgi, use_endpoints):
    rejecting, good = fake_tgi(Script(fail="status", status=422)), fake_tgi()
    use_endpoints(tgi(rejecting, weight=FIRST), tgi(good))
    socket, cid = await open_conversation()

    events = await ask(socket, "A very long question")
    error = (await receive_until(socket, "error"))[-1]

    final = events[-2]["message"]
    assert error == {"type": "error", "message": TGI_VALIDATION_ERROR, "message_id": final["id"]}
    assert final["error"] == TGI_VALIDATION_ERROR and final["is_generating"] is False
    assert good.generation_requests == []  # the same input would be too long there too
    assert await db(stored)(cid) == [
        ("user", "A very long question", ""),
        ("assistant", "", TGI_VALIDATION_ERROR),
    ]
    await socket.disconnect()


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (Script(tokens=["a", " b", " c", " d"], fail="error_event", fail_after=3), None),
        (Script(tokens=["a", " b", " c", " d"], fail="drop", fail_after=3), ERR_CONNECTION_LOST),
        (Script(tokens=["a", " b", " c", " d"], fail="stall", fail_after=3), ERR_TIMEOUT),
    ],
    ids=["error event", "dropped", "stalled"],
)
async def test_an_error_mid_answer_keeps_the_text_and_says_what_happened(
    script, message, fake_tgi, use_endpoints
):
    breaking, good = fake_tgi(script), fake_tgi()
    use_endpoints(tgi(breaking, weight=FIRST), tgi(good))
    socket, cid = await open_conversation()

    events = await ask(socket, "Go")
    error = (await receive_until(socket, "error"))[-1]

    final = events[-2]["message"]
    expected = message or TGI_GENERATION_ERROR
    assert error["message"] == expected == final["error"]
    assert merge_tokens("", events, final["id"]) == "a b c" == final["content"]
    assert final["interrupted"] is True and final["is_generating"] is False
    assert good.generation_requests == []  # not retried once the answer has begun
    assert await db(stored)(cid) == [("user", "Go", ""), ("assistant", "a b c", expected)]
    await socket.disconnect()


async def test_when_every_endpoint_fails_the_message_is_kept_and_retry_works_later(
    fake_tgi, use_endpoints
):
    first, second = fake_tgi(Script(fail="status", status=500)), fake_tgi(Script(fail="status"))
    use_endpoints(tgi(first), tgi(second), tgi(unused_url()))
    socket, cid = await open_conversation()

    events = await ask(socket, "Are you there?")
    error = (await receive_until(socket, "error"))[-1]

    user_message, failed = events[0]["message"], events[-2]["message"]
    assert error["message"] == failed["error"] != ""
    assert error["message"] in (
        ERR_CONNECT,
        ERR_SERVER.format(status=500, detail=TGI_GENERATION_ERROR),
    )
    assert len(first.generation_requests) == len(second.generation_requests) == 1
    assert await db(stored)(cid) == [
        ("user", "Are you there?", ""),
        ("assistant", "", error["message"]),
    ]

    second.script = Script()  # the endpoint is back
    await socket.send_json_to({"type": "regenerate", "message_id": user_message["id"]})
    retried = (await receive_until(socket, "final"))[-1]["message"]
    assert (retried["content"], retried["error"]) == (ANSWER, None)
    assert retried["parent_id"] == user_message["id"]
    await receive_until(socket, "status")
    await socket.disconnect()


async def test_an_endpoint_that_keeps_failing_is_skipped_for_a_while(
    fake_tgi, use_endpoints, endpoint_health
):
    failing, good = fake_tgi(Script(fail="status", status=502)), fake_tgi()
    use_endpoints(tgi(failing, weight=FIRST), tgi(good))
    socket, _ = await open_conversation()
    parent = None
    for turn in range(endpoint_health.failure_threshold):
        events = await ask(socket, f"turn {turn}", parent)
        parent = events[-2]["message"]["id"]
        assert events[-2]["message"]["content"] == ANSWER
    assert len(failing.generation_requests) == endpoint_health.failure_threshold

    events = await ask(socket, "once more", parent)

    assert events[-2]["message"]["content"] == ANSWER
    assert len(failing.generation_requests) == endpoint_health.failure_threshold  # skipped
    assert len(good.generation_requests) == endpoint_health.failure_threshold + 1
    await socket.disconnect()


async def test_answers_spread_over_endpoints_by_weight(fake_tgi, use_endpoints):
    heavy, light = fake_tgi(), fake_tgi()
    use_endpoints(tgi(heavy, weight=3), tgi(light, weight=1))
    # A user: 60 answers in a few seconds are over an anonymous visitor's default rate limit.
    socket, _ = await open_conversation("steady")
    parent = None
    for turn in range(60):
        events = await ask(socket, f"turn {turn}", parent)
        parent = events[-2]["message"]["id"]
    num_heavy, num_light = len(heavy.generation_requests), len(light.generation_requests)
    assert num_heavy + num_light == 60
    assert num_heavy > num_light > 0  # 3:1; false alarm odds: 1 in 40,000
    await socket.disconnect()
