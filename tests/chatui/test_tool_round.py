"""A model with `"tools": true` over the websocket: the tool round on the server's chat route,
the calls run and stored with the answer, their results in the answer's prompt, and the calls
carried by snapshots, exports and shared copies. Reasoning deltas become a <think> block."""

from __future__ import annotations

import json

import httpx
import pytest

from chatui import services
from chatui.endpoints import StreamChunk
from chatui.endpoints.openai import OpenAI
from chatui.models import Message
from chatui.models_config import Endpoint
from chatui.selectors import conversation_export, conversation_get
from tests.chatui.fake_endpoints import Script
from tests.chatui.fake_tool_endpoint import FakeToolTGI, tool_call
from tests.chatui.helpers import connect, db, make_owner, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

TOOL_MODEL = "model-tools"
OPENAI_CHAT = Endpoint(type="openai", url="http://127.0.0.1:9/v1", stream_path="")


@pytest.fixture
def tool_tgi(configure):
    fake = FakeToolTGI(Script(tokens=["It", " is", " 84", "."])).start()
    models = [
        {
            "id": TOOL_MODEL,
            "name": "org/model-tools",
            "tools": True,
            "parameters": {"max_new_tokens": 32},
            "endpoints": [{"type": "tgi", "url": fake.url}],
        },
        {"id": "plain", "name": "org/plain", "endpoints": [{"type": "tgi", "url": fake.url}]},
    ]
    configure(MODELS=json.dumps(models), LLM_SUMMARIZATION="false")
    yield fake
    fake.stop()


def _conversation(owner, model: str) -> str:
    return str(services.conversation_create(identity=owner.identity, model=model).pk)


async def ask(model: str, content: str):
    owner = await db(make_owner)(None)
    cid = await db(_conversation)(owner, model)
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": content, "parent_id": None})
    events = await receive_until(socket, "final")
    await socket.disconnect()
    return owner, cid, events


async def test_tool_call_runs_is_stored_and_feeds_the_answer(tool_tgi):
    tool_tgi.tool_calls = [tool_call("calculator", {"expression": "12 * 7"})]
    owner, cid, events = await ask(TOOL_MODEL, "What is 12 times 7?")

    (round_body,) = tool_tgi.chat_requests
    assert round_body["tool_choice"] == "auto"
    assert {t["function"]["name"] for t in round_body["tools"]} >= {
        "calculator",
        "current_datetime",
    }
    assert round_body["messages"][-1] == {"role": "user", "content": "What is 12 times 7?"}

    shown = [e for e in events if e["type"] == "tool_calls"]
    expected = [{"id": "call_1", "name": "calculator", "arguments": '{"expression": "12 * 7"}',
                 "result": "84"}]  # fmt: skip
    assert shown and shown[0]["tool_calls"] == expected
    final = events[-1]["message"]
    assert final["tool_calls"] == expected and final["content"] == "It is 84."
    prompt = tool_tgi.requests[-1].body["inputs"]
    assert "calculator" in prompt and "-> 84" in prompt

    stored = await db(lambda: Message.objects.get(pk=final["id"]).tool_calls)()
    assert stored == expected
    export = await db(conversation_export)(identity=owner.identity)
    assert export["conversations"][0]["messages"][1]["tool_calls"] == expected
    conversation = await db(conversation_get)(identity=owner.identity, conversation_id=cid)
    share = await db(services.conversation_share)(
        identity=owner.identity, conversation=conversation
    )
    copy = await db(services.shared_continue)(identity=owner.identity, share=share)
    copied = await db(lambda: list(copy.messages.order_by("created_at")))()
    assert copied[1].tool_calls == expected


async def test_no_tool_called_and_models_without_tools_make_no_round(tool_tgi):
    _, _, events = await ask(TOOL_MODEL, "Hello")
    assert len(tool_tgi.chat_requests) == 1
    assert events[-1]["message"]["tool_calls"] == []
    assert not [e for e in events if e["type"] == "tool_calls"]
    await ask("plain", "Hello")
    assert len(tool_tgi.chat_requests) == 1  # no round for a model without tools


async def test_unknown_tool_and_bad_arguments_are_answers_not_failures(tool_tgi):
    tool_tgi.tool_calls = [
        tool_call("rm_rf", {}, "call_a"),
        {"id": "call_b", "type": "function",
         "function": {"name": "calculator", "arguments": "not json"}},
    ]  # fmt: skip
    _, _, events = await ask(TOOL_MODEL, "Do something")
    calls = events[-1]["message"]["tool_calls"]
    assert [c["result"] for c in calls] == [
        "error: there is no tool named 'rm_rf'",
        "error: the arguments are not a JSON object",
    ]
    assert events[-1]["message"]["content"] == "It is 84."


async def test_reasoning_deltas_become_a_think_block():
    frames = [
        {"choices": [{"index": 0, "delta": {"reasoning_content": "Capital"}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": " of France"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Paris"}}]},
        {"choices": [{"index": 0, "delta": {"content": "."}, "finish_reason": "stop"}]},
    ]
    wire = "".join(f"data: {json.dumps(f)}\n\n" for f in frames) + "data: [DONE]\n\n"
    response = httpx.Response(200, content=wire.encode())
    items = [item async for item in OpenAI().parse(OPENAI_CHAT, response, [])]
    pieces = [i.text for i in items if isinstance(i, StreamChunk)]
    assert pieces == ["<think>Capital", " of France", "</think>Paris", "."]
    assert items[-1].text == "<think>Capital of France</think>Paris."
