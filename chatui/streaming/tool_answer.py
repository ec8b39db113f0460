"""An answer with tools: the tool loop (`chatui.tools.loop`) run for a running answer, its
text streamed as tokens, each call announced as it starts (`tool_call`) and the calls so far
stored and sent once they end (`tool_calls`).

Below `chatui.streaming.answer` (which runs it): must not import it (what it needs of an
answer is the `ToolAnswer` protocol), nor the socket, consumers or views.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from channels.db import database_sync_to_async

from chatui import services
from chatui.endpoints.backend import StreamChunk, StreamResult, finish
from chatui.endpoints.tool_stream import StepEnd, stream_tool_step
from chatui.prompt_assembly import AnswerPrompt
from chatui.streaming.hub import get_hub
from chatui.tools.calls import RequestedCall
from chatui.tools.catalog import OfferedTool
from chatui.tools.history import chat_messages
from chatui.tools.loop import run_tool_loop
from chatui.tools.mcp_servers import McpServer
from chatui.tools.setup import call_limits, get_catalog, max_steps


class ToolAnswer(Protocol):
    """What the loop uses of a running answer (`chatui.streaming.answer.Answer`)."""

    message_id: str
    running_tools: list[dict[str, Any]]  # the calls under way (a snapshot shows them)

    async def emit(self, payload: dict[str, Any]) -> None: ...


@dataclasses.dataclass
class _Sink:
    answer: ToolAnswer
    add_text: Callable[[str], Awaitable[None]]
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    async def text(self, piece: str) -> None:
        await self.add_text(piece)

    async def calls_started(self, calls: list[RequestedCall], step: int) -> None:
        for call in calls:
            payload = {"id": call.id, "name": call.name, "arguments": call.arguments, "step": step}
            self.answer.running_tools.append(payload)
            await self.answer.emit(
                {"type": "tool_call", "message_id": self.answer.message_id, "call": payload}
            )

    async def calls_finished(self, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)
        self.answer.running_tools.clear()
        await database_sync_to_async(services.message_set_tool_calls)(
            message_id=self.answer.message_id, tool_calls=self.records
        )
        await self.answer.emit(
            {"type": "tool_calls", "message_id": self.answer.message_id, "tool_calls": self.records}
        )


async def stream_with_tools(
    answer: ToolAnswer,
    prompt: AnswerPrompt,
    tools: list[OfferedTool],
    add_text: Callable[[str], Awaitable[None]],
    user_servers: tuple[McpServer, ...] = (),
) -> StreamResult:
    """Run the loop for `answer`; the end of its stream, as `stream_generation` gives it."""
    hub = get_hub()
    model = prompt.model

    def stream_step(
        messages: list[dict[str, Any]], specs: list[dict[str, Any]]
    ) -> AsyncIterator[StreamChunk | StepEnd]:
        return stream_tool_step(
            model, messages=messages, tools=specs, client=hub.client(), state=hub.endpoints
        )

    result = await run_tool_loop(
        messages=chat_messages(model, prompt.messages, prompt.preprompt),
        tools=tools,
        stream_step=stream_step,
        sink=_Sink(answer, add_text),
        catalog=get_catalog(),
        limits=call_limits(),
        max_steps=max_steps(),
        user_servers=user_servers,
    )
    stops = list(model.parameters.get("stop") or ())
    return finish(
        result.text, result.finish_reason, stops, result.generated_tokens, result.prompt_tokens
    )
