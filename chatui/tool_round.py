"""The tool round before an answer of a model with `"tools": true`.

The model is asked once, not streamed, on its endpoint's OpenAI chat route with the registered
tools (`tool_choice: "auto"`, through `chatui.endpoints.tool_completion`). If it calls some,
they run here (in a worker thread: a tool may block) and each call is kept as
`{"id", "name", "arguments", "result"}`: stored with the answer (the page shows it as a
collapsible block, exports and shares carry it) and given to the model for the answer that then
streams as usual. A round that fails (the server has no tools, the network) leaves the answer
without tools rather than failing it.
Must not import Django's ORM (callers store the calls) nor speak HTTP itself (endpoints does),
nor import the websocket layer (consumers, routing, `chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from chatui.endpoints import EndpointError, EndpointState, tool_completion
from chatui.models_config import ModelSpec
from chatui.prompting import ChatMessage
from chatui.tools import tool_get, tool_list

logger = logging.getLogger(__name__)

ROUND_MAX_TOKENS = 96  # a call fits; words the model writes instead are dropped, so cut short
MAX_CALLS = 4  # calls run per round; more are dropped
UNKNOWN_TOOL = "error: there is no tool named {0!r}"
BAD_ARGUMENTS = "error: the arguments are not a JSON object"
RESULTS_HEADER = "Results of the tools you called (use them to answer):"


def round_messages(messages: list[ChatMessage], preprompt: str) -> list[dict[str, str]]:
    system = [{"role": "system", "content": preprompt}] if preprompt else []
    return system + [{"role": m.role, "content": m.content} for m in messages]


def run_call(call: dict[str, Any]) -> dict[str, Any]:
    """Run one `tool_calls` entry of the model's answer; the record the chat keeps."""
    function = call.get("function") or {}
    name = str(function.get("name") or "")
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        arguments = None
    tool = tool_get(name)
    if tool is None:
        result = UNKNOWN_TOOL.format(name)
    elif not isinstance(arguments, dict):
        result = BAD_ARGUMENTS
    else:
        result = tool.call(arguments)
    return {
        "id": str(call.get("id") or ""),
        "name": name,
        "arguments": raw if isinstance(raw, str) else json.dumps(raw),
        "result": result,
    }


async def tool_round(
    model: ModelSpec,
    *,
    messages: list[ChatMessage],
    preprompt: str,
    client: httpx.AsyncClient,
    state: EndpointState | None = None,
) -> list[dict[str, Any]]:
    """The calls the model made and their results ([] when it called none)."""
    tools = tool_list()
    if not tools:
        return []
    try:
        message = await tool_completion(
            model,
            messages=round_messages(messages, preprompt),
            tools=[t.spec() for t in tools],
            max_tokens=ROUND_MAX_TOKENS,
            client=client,
            state=state,
        )
    except EndpointError as exc:
        logger.warning("Tool round for %s failed: %s", model.id, exc)
        return []
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)][:MAX_CALLS]
    return [await asyncio.to_thread(run_call, call) for call in calls]


def with_results(messages: list[ChatMessage], records: list[dict[str, Any]]) -> list[ChatMessage]:
    """The history for the answer: the last user turn followed by what the tools returned
    (as text, which every prompt format carries)."""
    if not records or not messages:
        return messages
    lines = [f"- {r['name']}({r['arguments']}) -> {r['result']}" for r in records]
    last = messages[-1]
    note = "\n\n" + RESULTS_HEADER + "\n" + "\n".join(lines)
    return [*messages[:-1], ChatMessage(role=last.role, content=last.content + note)]
