"""The only code that speaks to model servers: TGI and OpenAI-compatible streaming over httpx.

`stream_generation` picks one of a model's endpoints by weighted random choice (as chat-ui does),
skipping endpoints `EndpointHealth` has marked down, and yields `StreamChunk` items then exactly
one `StreamResult`. Unlike chat-ui it fails over: a connection error, a timeout, a 5xx/429 answer
or an error event *before the first token* moves on to another endpoint of the same model. After
the first token an error ends the stream with `EndpointError` (the partial text is the caller's).

Closing the generator (``aclose()``, or cancelling the task awaiting it) closes the HTTP response,
so the server sees the disconnect and stops generating.

What differs between endpoint types is in one `Backend` each (`tgi`, `openai`); what is kept
between answers (health marks, chat templates, the choice's RNG) is an `EndpointState` the
caller passes (the process's lives in `chatui.streaming.hub`).

Must not import Django or the database layer: callers pass models and messages in.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from chatui import metrics
from chatui.endpoints.backend import (
    DEFAULT_TIMEOUT,
    ERR_BAD_RESPONSE,
    ERR_CONNECT,
    ERR_CONNECTION_LOST,
    ERR_INCOMPLETE,
    ERR_NO_ENDPOINTS,
    ERR_REJECTED,
    ERR_SERVER,
    ERR_TIMEOUT,
    STATUS_TIMEOUT_S,
    Ask,
    Backend,
    EndpointError,
    StreamChunk,
    StreamEvents,
    StreamResult,
    raise_for_status,
)
from chatui.endpoints.health import EndpointHealth, choose_endpoint
from chatui.endpoints.openai import OpenAI
from chatui.endpoints.templates import ChatTemplates
from chatui.endpoints.tgi import TGI
from chatui.endpoints.tool_stream import StepEnd, stream_tool_step
from chatui.models_config import Endpoint, ModelSpec
from chatui.prompting import ChatMessage, PromptTemplateError, build_prompt, truncate_messages

__all__ = [
    "DEFAULT_TIMEOUT",
    "ERR_BAD_RESPONSE",
    "ERR_CONNECT",
    "ERR_CONNECTION_LOST",
    "ERR_INCOMPLETE",
    "ERR_NO_ENDPOINTS",
    "ERR_REJECTED",
    "ERR_SERVER",
    "ERR_TIMEOUT",
    "EndpointError",
    "EndpointHealth",
    "EndpointState",
    "StepEnd",
    "StreamChunk",
    "StreamResult",
    "backend_for",
    "endpoint_status",
    "generate_text",
    "stream_generation",
    "stream_tool_step",
]

logger = logging.getLogger(__name__)

_BACKENDS: dict[str, Backend] = {"tgi": TGI(), "openai": OpenAI()}


def backend_for(endpoint: Endpoint) -> Backend:
    return _BACKENDS[endpoint.type]


@dataclass
class EndpointState:
    """What the client keeps between answers; one per process (tests make their own)."""

    health: EndpointHealth = field(default_factory=EndpointHealth)
    templates: ChatTemplates = field(default_factory=ChatTemplates)
    rng: random.Random = field(default_factory=random.Random)

    def reset(self) -> None:
        self.health.reset()
        self.templates.clear()


async def _request_body(
    endpoint: Endpoint, ask: Ask, client: httpx.AsyncClient, templates: ChatTemplates
) -> dict[str, Any]:
    backend = backend_for(endpoint)
    if not backend.truncates_prompt:
        ask = replace(ask, messages=truncate_messages(ask.messages, ask.parameters.get("truncate")))
    if not backend.needs_prompt(endpoint):
        return backend.body(endpoint, ask, None)
    template = None
    if not ask.model.chat_prompt_template:
        template = await templates.get(
            endpoint, backend, tokenizer=ask.model.tokenizer, client=client
        )
    try:
        prompt = build_prompt(
            ask.model,
            ask.messages,
            preprompt=ask.preprompt,
            continue_message=ask.continue_message,
            tokenizer_template=template,
        )
    except PromptTemplateError as exc:
        raise EndpointError(str(exc)) from None
    return backend.body(endpoint, ask, prompt)


async def _stream_endpoint(
    endpoint: Endpoint, ask: Ask, client: httpx.AsyncClient, templates: ChatTemplates
) -> StreamEvents:
    """One attempt on one endpoint; transport errors become `EndpointError`."""
    backend = backend_for(endpoint)
    body = await _request_body(endpoint, ask, client, templates)
    try:
        async with client.stream(
            "POST",
            backend.stream_url(endpoint),
            json=body,
            headers=backend.headers(endpoint),
            params=endpoint.default_query or None,
        ) as response:
            await raise_for_status(response)
            events = backend.parse(endpoint, response, ask.stops)
            async with aclosing(events):
                async for item in events:
                    yield item
    except httpx.TimeoutException:
        raise EndpointError(ERR_TIMEOUT, retryable=True) from None
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        if isinstance(exc, httpx.ConnectError):
            raise EndpointError(ERR_CONNECT, retryable=True) from None
        raise EndpointError(ERR_CONNECTION_LOST, retryable=True) from None
    except httpx.HTTPError as exc:
        logger.warning("HTTP error from %s: %r", endpoint.url, exc)
        raise EndpointError(ERR_CONNECT, retryable=True) from None


async def stream_generation(
    model: ModelSpec,
    *,
    messages: list[ChatMessage],
    preprompt: str | None,
    continue_message: bool = False,
    client: httpx.AsyncClient | None = None,
    state: EndpointState | None = None,
    health: EndpointHealth | None = None,
    parameters: Mapping[str, Any] | None = None,
    rng: random.Random | None = None,
) -> StreamEvents:
    """Stream one answer: `StreamChunk` items, then exactly one `StreamResult`.

    ``parameters`` override the model's (e.g. a smaller ``max_new_tokens`` for titles);
    ``health`` and ``rng`` override the `state`'s (none: a fresh one, nothing remembered).
    Raises `EndpointError`: before the first chunk only once every endpoint failed; after it,
    on the first error.
    """
    state = state or EndpointState()
    health = health or state.health
    rng = rng or state.rng
    ask = Ask(
        model,
        messages,
        preprompt,
        {**model.parameters, **(parameters or {})},
        continue_message,
    )
    own_client = client is None
    if client is None:
        client = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
    tried: set[str] = set()
    last_error: EndpointError | None = None
    last_key: str | None = None
    try:
        while True:
            endpoint = choose_endpoint(model.endpoints, health=health, rng=rng, exclude=tried)
            if endpoint is None:
                metrics.stream_failed(model.id, last_key)
                raise last_error or EndpointError(ERR_NO_ENDPOINTS)
            tried.add(endpoint.key)
            last_key = endpoint.key
            metrics.stream_started(model.id, endpoint.key)
            started = False
            attempt = _stream_endpoint(endpoint, ask, client, state.templates)
            try:
                async with aclosing(attempt):
                    async for item in attempt:
                        started = True
                        yield item
            except EndpointError as exc:
                if exc.retryable:
                    health.record_failure(endpoint)
                if started or not exc.retryable:
                    exc.retryable = exc.retryable and not started
                    metrics.stream_failed(model.id, endpoint.key)
                    raise
                logger.warning("Endpoint %s failed before the first token: %s", endpoint.key, exc)
                metrics.failed_over(model.id, endpoint.key)
                last_error = exc
                continue
            health.record_success(endpoint)
            return
    finally:
        if own_client:
            await client.aclose()


async def generate_text(
    model: ModelSpec,
    prompt_messages: list[ChatMessage],
    max_new_tokens: int,
    *,
    client: httpx.AsyncClient | None = None,
    state: EndpointState | None = None,
    health: EndpointHealth | None = None,
) -> str:
    """The whole answer at once (for titles and other short tasks)."""
    result = ""
    stream = stream_generation(
        model,
        messages=prompt_messages,
        preprompt=None,
        client=client,
        state=state,
        health=health,
        parameters={"max_new_tokens": max_new_tokens},
    )
    async with aclosing(stream):
        async for item in stream:
            if isinstance(item, StreamResult):
                result = item.text
    return result


async def endpoint_status(
    endpoint: Endpoint, *, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """For the admin health page: ``{url, ok, status, info, error}``.

    TGI: ``GET /health`` then ``/info``; OpenAI: ``GET /models`` (``info`` lists the ids).
    """
    result: dict[str, Any] = {
        "url": endpoint.url,
        "ok": False,
        "status": None,
        "info": None,
        "error": None,
    }
    own = client is None
    client = client or httpx.AsyncClient(timeout=STATUS_TIMEOUT_S)
    try:
        await backend_for(endpoint).status(endpoint, client, result)
        if not result["ok"]:
            result["error"] = f"HTTP {result['status']}"
    except httpx.TimeoutException:
        result["error"] = ERR_TIMEOUT
    except httpx.HTTPError as exc:
        result["error"] = f"{ERR_CONNECT} ({type(exc).__name__})"
    except (ValueError, AttributeError):
        result["error"] = ERR_BAD_RESPONSE
    finally:
        if own:
            await client.aclose()
    return result
