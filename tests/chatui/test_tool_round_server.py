"""The chat's tool round against this project's own model server (the tiny random model on a
real socket), not a fake: the request the chat sends is one the server accepts, and the calls
the server answers run as the chat's tools."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from chatui.endpoints import tool_completion
from chatui.models_config import Endpoint, ModelSpec
from chatui.prompting import ChatMessage
from chatui.tool_round import UNKNOWN_TOOL, tool_round
from chatui.tools import tool_get, tool_list
from inference.config import EngineConfig
from tests.inference.api.conftest import serve, tiny_engine
from tests.inference.live_server import LiveServer

LIMITS = EngineConfig(
    max_concurrent_requests=4,
    max_input_tokens=1024,
    max_total_tokens=2048,
    max_batch_prefill_tokens=1024,
    max_batch_total_tokens=16384,
    max_batch_size=4,
)


@pytest.fixture(scope="module")
def model_server() -> Iterator[LiveServer]:
    live = serve(tiny_engine(LIMITS), LIMITS)
    yield live
    live.stop()


@pytest.fixture
def model(model_server: LiveServer) -> ModelSpec:
    endpoint = Endpoint(type="tgi", url=model_server.url)
    return ModelSpec(id="tgi", name="tgi", display_name="tgi", tools=True, endpoints=(endpoint,))


async def test_the_server_answers_the_round_and_its_calls_run(model):
    tools = [t.spec() for t in tool_list()]
    async with httpx.AsyncClient() as client:
        message = await tool_completion(
            model,
            messages=[{"role": "user", "content": "What time is it?"}],
            tools=tools,
            max_tokens=96,
            client=client,
        )
        records = await tool_round(
            model, messages=[ChatMessage("user", "What time is it?")], preprompt="", client=client
        )
    assert message["role"] == "assistant"
    assert message.get("tool_calls") or isinstance(message.get("content"), str)
    for call in message.get("tool_calls") or []:
        assert tool_get(call["function"]["name"]) is not None  # only offered tools
        assert isinstance(json.loads(call["function"]["arguments"]), dict)
    for record in records:
        assert tool_get(record["name"]) is not None
        assert record["result"] != UNKNOWN_TOOL.format(record["name"])
        assert isinstance(json.loads(record["arguments"]), dict)
