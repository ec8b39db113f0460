"""Answers with tools through a real socket: a scripted model server asks for calls (a
built-in, then mcp-server-time over stdio), the calls stream as they start, run, go back as
`role: "tool"` messages, and the answer continues; the step limit; Stop during a call; the
conversation's tools switch; earlier calls replayed in later prompts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import pytest

from chatui.tools import register_tool
from chatui.tools.builtins import _REGISTRY
from chatui.tools.catalog import ToolCatalog
from chatui.tools.mcp_servers import server_from_entry
from chatui.tools.setup import set_catalog
from tests.chatui.fake_endpoints import Script
from tests.chatui.fake_tool_endpoint import FakeToolTGI, Step, tool_call
from tests.chatui.helpers import (
    MODEL_A,
    connect,
    db,
    messages_of,
    receive_until,
    setup_owner,
    wait_idle,
)
from tests.peers.mcp_peers import time_server_entry

pytestmark = pytest.mark.django_db(transaction=True)

TOOL_MODEL = "org/tool-model"


@pytest.fixture
def tool_fake(configure) -> Iterator[FakeToolTGI]:
    with FakeToolTGI(Script(tokens=["No", " tools"])) as fake:
        models = [
            {
                "id": MODEL_A,
                "name": TOOL_MODEL,
                "supportsTools": True,  # chat-ui's name
                "parameters": {"max_new_tokens": 64},
                "endpoints": [{"type": "tgi", "url": fake.url}],
            }
        ]
        configure(MODELS=json.dumps(models), LLM_SUMMARIZATION="false")
        previous = set_catalog(ToolCatalog())  # the built-ins only
        yield fake
        set_catalog(previous)


def roles(body: dict) -> list[str]:
    return [m["role"] for m in body["messages"]]


async def test_a_two_step_chain_streams_runs_and_is_replayed(tool_fake: FakeToolTGI) -> None:
    set_catalog(ToolCatalog([server_from_entry(time_server_entry())]))
    tool_fake.play(
        Step(calls=[tool_call("calculator", {"expression": "6 * 7"}, "c1")]),
        Step(
            text=["Checking", " Tokyo. "],
            calls=[tool_call("get_current_time", {"timezone": "Asia/Tokyo"}, "c2")],
        ),
        Step(text=["It", " is", " 42", " in", " Tokyo", "."]),
    )
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "Time in Tokyo?", "parent_id": None})
    events = await receive_until(socket, "final")
    kinds = [e["type"] for e in events]
    started = [e["call"] for e in events if e["type"] == "tool_call"]
    assert [c["name"] for c in started] == ["calculator", "get_current_time"]
    assert kinds.index("tool_call") < kinds.index("tool_calls") < kinds.index("token")
    final = events[-1]["message"]
    assert final["content"] == "Checking Tokyo. It is 42 in Tokyo."
    calc, clock = final["tool_calls"]
    assert (calc["result"], calc["step"], calc["source"]) == ("42", 0, "builtin")
    assert clock["step"] == 1 and clock["source"] == "time" and "+09:00" in clock["result"]
    assert not calc["error"] and not clock["error"] and clock["duration_ms"] > 0

    first, second, third = tool_fake.chat_requests
    assert first["stream"] is True and first["tool_choice"] == "auto"
    assert {"calculator", "get_current_time"} <= {t["function"]["name"] for t in first["tools"]}
    assert roles(second)[-2:] == ["assistant", "tool"]
    assert second["messages"][-1] == {
        "role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "42"
    }  # fmt: skip
    assert (
        second["messages"][-2]["tool_calls"][0]["function"]["arguments"]
        == '{"expression": "6 * 7"}'
    )
    assert roles(third)[-4:] == ["assistant", "tool", "assistant", "tool"]
    stored = (await db(messages_of)(cid))[-1]
    assert [r["id"] for r in stored.tool_calls] == ["c1", "c2"]

    # A follow-up: the earlier calls are replayed before the earlier answer's text.
    tool_fake.play(Step(text=["Sure", "."]))
    await socket.send_json_to({"type": "send", "content": "Thanks", "parent_id": final["id"]})
    await receive_until(socket, "final")
    replayed = tool_fake.chat_requests[-1]["messages"]
    assert [m["role"] for m in replayed if m["role"] != "system"] == [
        "user", "assistant", "tool", "assistant", "tool", "assistant", "user"
    ]  # fmt: skip
    assert replayed[-2]["content"] == "Checking Tokyo. It is 42 in Tokyo."
    await wait_idle(cid)
    await socket.disconnect()


async def test_the_step_limit_and_the_switch(tool_fake: FakeToolTGI, settings) -> None:
    settings.CHATUI_TOOL_MAX_STEPS = 1
    call = tool_call("calculator", {"expression": "1 + 1"})
    tool_fake.play(Step(calls=[call]), Step(calls=[call]))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "Loop", "parent_id": None})
    final = (await receive_until(socket, "final"))[-1]["message"]
    assert len(final["tool_calls"]) == 1 and final["interrupted"] is True
    assert "tools" not in tool_fake.chat_requests[-1]  # the last step is offered none

    num_chat = len(tool_fake.chat_requests)
    await socket.send_json_to(
        {"type": "send", "content": "No tools", "parent_id": final["id"], "tools": False}
    )
    final = (await receive_until(socket, "final"))[-1]["message"]
    assert final["content"] == "No tools" and final["tool_calls"] == []
    assert len(tool_fake.chat_requests) == num_chat  # the plain generation route was used
    await wait_idle(cid)
    await socket.disconnect()


async def test_stop_ends_a_running_call(tool_fake: FakeToolTGI) -> None:
    release = threading.Event()  # the call runs until the test lets it go
    register_tool(
        name="wait_a_while",
        description="Waits",
        parameters={"type": "object", "properties": {}},
        function=lambda: release.wait(10) and "waited",
    )
    try:
        tool_fake.play(Step(calls=[tool_call("wait_a_while", {})]))
        owner, cid = await setup_owner()
        socket = await connect(owner, cid)
        await socket.send_json_to({"type": "send", "content": "Wait", "parent_id": None})
        await receive_until(socket, "tool_call")
        late = await connect(owner, cid)  # a page opened now sees the call under way
        [answer] = [m for m in late.snapshot["messages"] if m["role"] == "assistant"]
        assert [c["name"] for c in answer["running_tools"]] == ["wait_a_while"]
        await late.disconnect()
        started = time.monotonic()
        await socket.send_json_to({"type": "stop"})
        events = await receive_until(socket, "status", status="stopped")
        assert time.monotonic() - started < 5  # the call would run 10 s
        final = next(e for e in events if e["type"] == "final")["message"]
        assert final["interrupted"] is True and final["tool_calls"] == []
        await wait_idle(cid)
        await socket.disconnect()
        await asyncio.sleep(0)
    finally:
        release.set()
        _REGISTRY.pop("wait_a_while", None)


async def test_a_server_without_tool_calling_still_answers(fake_tgi, configure) -> None:
    plain = fake_tgi(Script(tokens=["Plain", " answer"]))  # no chat route: 404
    models = [
        {"id": MODEL_A, "name": TOOL_MODEL, "supportsTools": True,
         "endpoints": [{"type": "tgi", "url": plain.url}]}
    ]  # fmt: skip
    configure(MODELS=json.dumps(models), LLM_SUMMARIZATION="false")
    previous = set_catalog(ToolCatalog())
    try:
        owner, cid = await setup_owner()
        socket = await connect(owner, cid)
        await socket.send_json_to({"type": "send", "content": "Hi", "parent_id": None})
        final = (await receive_until(socket, "final"))[-1]["message"]
        assert final["content"] == "Plain answer" and not final["error"]
        await wait_idle(cid)
        await socket.disconnect()
    finally:
        set_catalog(previous)
