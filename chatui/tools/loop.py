"""The multi-step tool loop of one answer: stream a step; if the model asked for tools, run
them (at once: they were asked for together), give their results back as `role: "tool"`
messages and stream the next step; until the model answers, or `max_steps` rounds of calls
were run (the last step is then offered no tools, so it must answer).

What the page sees goes through a `LoopSink`; the model side through a `StepStreamer`
(`chatui.endpoints.stream_tool_step` bound to a model and client), so this module neither
speaks HTTP nor touches the database.

Must not import Django or the websocket layer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatui.endpoints.backend import StreamChunk
from chatui.endpoints.tool_stream import StepEnd
from chatui.tools.calls import CallLimits, RequestedCall, run_calls
from chatui.tools.catalog import OfferedTool, ToolCatalog
from chatui.tools.history import assistant_calls, tool_message
from chatui.tools.mcp_servers import McpServer

StepStreamer = Callable[
    [list[dict[str, Any]], list[dict[str, Any]]], AsyncIterator[StreamChunk | StepEnd]
]


class LoopSink(Protocol):
    """Where the loop reports: the text as it streams, calls as they start and end."""

    async def text(self, piece: str) -> None: ...

    async def calls_started(self, calls: list[RequestedCall], step: int) -> None: ...

    async def calls_finished(self, records: list[dict[str, Any]]) -> None: ...


@dataclass
class LoopResult:
    """The answer's text over all steps, every call's record, and how the last step ended."""

    text: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    generated_tokens: int = 0
    prompt_tokens: int | None = None
    hit_step_limit: bool = False


async def run_tool_loop(
    *,
    messages: list[dict[str, Any]],
    tools: list[OfferedTool],
    stream_step: StepStreamer,
    sink: LoopSink,
    catalog: ToolCatalog,
    limits: CallLimits,
    max_steps: int,
    user_servers: tuple[McpServer, ...] = (),
) -> LoopResult:
    """Run the answer's steps (see the module's docstring); `messages` is extended in place."""
    by_name = {t.name: t for t in tools}
    specs = [t.spec() for t in tools]
    result = LoopResult()
    step = 0
    while True:
        offered = specs if step < max_steps else []
        end: StepEnd | None = None
        async for item in stream_step(messages, offered):
            if isinstance(item, StepEnd):
                end = item
            elif item.text:
                result.text += item.text
                await sink.text(item.text)
        if end is None:  # NOTE: a step streamer always ends with a StepEnd
            return result
        result.finish_reason = end.finish_reason
        result.generated_tokens += end.generated_tokens or 0
        result.prompt_tokens = end.prompt_tokens or result.prompt_tokens
        if not end.tool_calls:
            return result
        if not offered:  # asked for tools it was not offered: stop here
            result.hit_step_limit = True
            return result
        calls = [RequestedCall(c["id"], c["name"], c["arguments"]) for c in end.tool_calls]
        await sink.calls_started(calls, step)
        records = await run_calls(
            calls, by_name, catalog=catalog, limits=limits, step=step, user_servers=user_servers
        )
        result.records.extend(records)
        await sink.calls_finished(records)
        messages.append(assistant_calls(end.tool_calls))
        messages.extend(tool_message(r) for r in records)
        step += 1
