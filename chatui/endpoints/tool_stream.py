"""One streamed step of an answer with tools: OpenAI chat messages and `tools` sent to the
endpoint's chat route (`/v1/chat/completions` of a TGI server, or the OpenAI base URL's),
its text yielded as it comes, then one `StepEnd` with the tool calls the model made, whose
`arguments` may arrive in pieces over many deltas (joined here by their `index`).

Must not import Django or the database layer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

import chatui.endpoints.backend as wire
from chatui.endpoints.health import choose_endpoint
from chatui.endpoints.openai import OpenAI, chat_parameters
from chatui.endpoints.tgi import TGI

logger = logging.getLogger(__name__)

_BACKENDS: dict[str, wire.Backend] = {"tgi": TGI(), "openai": OpenAI()}


@dataclass
class StepEnd:
    """How a step ended: its text, and the calls it asked for ([] when it answered)."""

    text: str
    finish_reason: str | None
    tool_calls: list[dict[str, str]] = field(default_factory=list)  # {id, name, arguments}
    generated_tokens: int | None = None
    prompt_tokens: int | None = None


def _merge_call_delta(calls: dict[int, dict[str, str]], delta: Mapping[str, Any]) -> None:
    index = delta.get("index")
    index = index if isinstance(index, int) else len(calls)
    call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
    if delta.get("id"):
        call["id"] = str(delta["id"])
    function = delta.get("function") or {}
    if function.get("name"):
        call["name"] += str(function["name"])
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        call["arguments"] += arguments
    elif isinstance(arguments, dict):  # some servers send the object itself
        call["arguments"] += json.dumps(arguments)


async def _parse(response: httpx.Response) -> AsyncIterator[wire.StreamChunk | StepEnd]:
    text, finish_reason = "", None
    generated = prompt_tokens = None
    calls: dict[int, dict[str, str]] = {}
    async for data in wire.sse_data(response):
        if data.strip() == "[DONE]":
            break
        event = wire.parse_event(data)
        detail = wire.error_detail(event)
        if detail is not None:
            raise wire.EndpointError(detail, retryable=not text and not calls)
        usage = event.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            generated, prompt_tokens = usage["completion_tokens"], usage.get("prompt_tokens")
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                text += piece
                yield wire.StreamChunk(piece)
            for call_delta in delta.get("tool_calls") or ():
                if isinstance(call_delta, dict):
                    _merge_call_delta(calls, call_delta)
            finish_reason = choice.get("finish_reason") or finish_reason
    else:
        if finish_reason is None:
            raise wire.EndpointError(wire.ERR_INCOMPLETE, retryable=True)
    ordered = [calls[i] for i in sorted(calls)]
    for number, call in enumerate(ordered):
        call["id"] = call["id"] or f"call_{number}"
    yield StepEnd(text, finish_reason, [c for c in ordered if c["name"]], generated, prompt_tokens)


async def stream_tool_step(
    model: Any,
    *,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    client: httpx.AsyncClient,
    state: Any,
    tool_choice: str | dict[str, Any] = "auto",
) -> AsyncIterator[wire.StreamChunk | StepEnd]:
    """`StreamChunk`s of the step's text, then one `StepEnd`. Raises `EndpointError`."""
    endpoint = choose_endpoint(model.endpoints, health=state.health, rng=state.rng)
    if endpoint is None:
        raise wire.EndpointError(wire.ERR_NO_ENDPOINTS)
    backend = _BACKENDS[endpoint.type]
    body: dict[str, Any] = {
        "model": model.id,
        "messages": messages,
        "stream": True,
        **chat_parameters(model.parameters),
    }
    if tools:
        body.update(tools=tools, tool_choice=tool_choice)
    try:
        async with client.stream(
            "POST", backend.chat_url(endpoint), json=body, headers=backend.headers(endpoint)
        ) as response:
            await wire.raise_for_status(response)
            async for item in _parse(response):
                yield item
    except httpx.TimeoutException:
        raise wire.EndpointError(wire.ERR_TIMEOUT, retryable=True) from None
    except httpx.ConnectError:
        state.health.record_failure(endpoint)
        raise wire.EndpointError(wire.ERR_CONNECT, retryable=True) from None
    except httpx.HTTPError as exc:
        logger.warning("HTTP error from %s: %r", endpoint.url, exc)
        raise wire.EndpointError(wire.ERR_CONNECTION_LOST, retryable=True) from None
