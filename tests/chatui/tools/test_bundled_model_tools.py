"""The tool loop's model side against our own server and the real bundled model (slow): a
call forced with `tool_choice` streams back as `tool_calls` deltas the client joins, the
tool runs, and the result goes back as a `role: "tool"` message the server renders
through the model's chat template before it answers in words."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from chatui.endpoints import EndpointState, StepEnd, stream_tool_step
from chatui.models_config import bundled_model
from chatui.tools import register_tool
from chatui.tools.builtins import _REGISTRY
from chatui.tools.calls import CallLimits, RequestedCall, run_calls
from chatui.tools.catalog import ToolCatalog
from chatui.tools.history import assistant_calls, tool_message
from inference.api import create_app
from inference.config import EngineConfig, ModelConfig, ServerConfig
from inference.engine.async_engine import AsyncEngine
from tests.inference.live_server import start_server

pytestmark = pytest.mark.slow

LIMITS = EngineConfig(
    max_concurrent_requests=4,
    max_input_tokens=2047,
    max_total_tokens=2048,
    max_batch_total_tokens=8192,
)


@pytest.fixture(scope="module")
def bundled_url() -> Iterator[str]:
    model = ModelConfig(model_id="bundled")
    app = create_app(
        None,
        ServerConfig(model=model, engine=LIMITS),
        engine_factory=lambda: AsyncEngine.from_config(model, LIMITS),
    )
    live = start_server(app)
    live.wait_until_ready(deadline_s=600)
    yield live.url
    live.stop()


async def _step(model, messages, tools, client, **kwargs) -> StepEnd:
    end = None
    async for item in stream_tool_step(
        model, messages=messages, tools=tools, client=client, state=EndpointState(), **kwargs
    ):
        if isinstance(item, StepEnd):
            end = item
    assert end is not None
    return end


@pytest.fixture
def zone_time() -> Iterator[None]:
    """A tool whose arguments are a few tokens (a tiny model's strings run long)."""
    register_tool(
        name="zone_time",
        description="The time now in a time zone",
        parameters={
            "type": "object",
            "properties": {"zone": {"enum": ["Asia/Tokyo", "UTC"]}},
            "required": ["zone"],
        },
        function=lambda zone: f"18:30 in {zone}",
    )
    yield
    _REGISTRY.pop("zone_time", None)


@pytest.mark.usefixtures("zone_time")
async def test_a_forced_call_runs_and_the_model_answers(bundled_url: str) -> None:
    model = bundled_model(bundled_url).model_copy(
        update={"parameters": {"max_new_tokens": 40, "temperature": 0}}
    )
    catalog = ToolCatalog()
    tools = {t.name: t for t in await catalog.offered()}
    specs = [tools["zone_time"].spec()]
    messages = [{"role": "user", "content": "What time is it in Tokyo?"}]
    choice = {"type": "function", "function": {"name": "zone_time"}}
    async with httpx.AsyncClient(timeout=120) as client:
        first = await _step(model, messages, specs, client, tool_choice=choice)
        assert first.finish_reason == "tool_calls"
        [call] = first.tool_calls
        assert call["name"] == "zone_time" and call["id"]
        assert json.loads(call["arguments"])["zone"] in ("Asia/Tokyo", "UTC")
        requested = [RequestedCall(call["id"], call["name"], call["arguments"])]
        [record] = await run_calls(requested, tools, catalog=catalog, limits=CallLimits(), step=0)
        assert record["result"].startswith("18:30 in ") and not record["error"]
        messages += [assistant_calls(first.tool_calls), tool_message(record)]
        second = await _step(model, messages, [], client)
    assert second.tool_calls == [] and second.text.strip()
    assert second.finish_reason in ("stop", "length", "eos_token")
