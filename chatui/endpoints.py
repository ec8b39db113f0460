"""The only code that speaks to model servers: TGI and OpenAI-compatible streaming over httpx.

`stream_generation` picks one of a model's endpoints by weighted random choice (as chat-ui does),
skipping endpoints `EndpointHealth` has marked down, and yields `StreamChunk` items then exactly
one `StreamResult`. Unlike chat-ui it fails over: a connection error, a timeout, a 5xx/429 answer
or an error event *before the first token* moves on to another endpoint of the same model. After
the first token an error ends the stream with `EndpointError` (the partial text is the caller's).

Closing the generator (``aclose()``, or cancelling the task awaiting it) closes the HTTP response,
so the server sees the disconnect and stops generating.

Must not import Django or the database layer: callers pass models and messages in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from huggingface_hub import try_to_load_from_cache

from chatui.models_config import Endpoint, ModelSpec
from chatui.prompting import (
    ChatMessage,
    PromptTemplateError,
    build_chat_messages,
    build_prompt,
    truncate_messages,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # read: the longest wait for one token
STATUS_TIMEOUT_S = 5.0

# Messages users see (tests import these).
ERR_CONNECT = "Could not connect to the model server. Please try again later."
ERR_TIMEOUT = "The model server took too long to answer. Please try again later."
ERR_SERVER = "The model server failed (HTTP {status}): {detail}"
ERR_REJECTED = "The model server rejected the request (HTTP {status}): {detail}"
ERR_CONNECTION_LOST = "The connection to the model server was lost during the answer."
ERR_INCOMPLETE = "The model server ended the answer before finishing it."
ERR_BAD_RESPONSE = "The model server sent a response that could not be read."
ERR_NO_ENDPOINTS = "This model has no endpoint configured."

# TGI has no presence_penalty; OpenAI servers get chat-ui's fixed set of names.
_TGI_IGNORED_PARAMETERS = frozenset({"presence_penalty"})
_OPENAI_PARAMETERS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "max_new_tokens": "max_tokens",
    "stop": "stop",
}
_FINISHED_REASONS = frozenset({"eos_token", "stop_sequence", "stop"})


@dataclass
class StreamChunk:
    """A piece of the answer as it arrives (special tokens are never yielded)."""

    text: str
    token_id: int | None = None
    special: bool = False


@dataclass
class StreamResult:
    """The end of a stream: the final text (trailing stop string removed) and how it ended."""

    text: str
    finish_reason: str | None  # "length" | "eos_token" | "stop_sequence" | "stop"
    interrupted: bool  # did not end on EOS or a stop sequence (e.g. hit max_new_tokens)
    generated_tokens: int | None = None


class EndpointError(Exception):
    """A model server could not give an answer; ``message`` is fit to show to users."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


# -- health ---------------------------------------------------------------------------------------


class EndpointHealth:
    """Marks an endpoint down for ``cooldown_s`` after ``failure_threshold`` failures in a row.

    In-process only; safe to share between threads and tasks.
    """

    def __init__(self, failure_threshold: int = 3, cooldown_s: float = 30.0) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._down_until: dict[str, float] = {}

    @staticmethod
    def _key(endpoint: Endpoint | str) -> str:
        return endpoint if isinstance(endpoint, str) else endpoint.key

    def is_healthy(self, endpoint: Endpoint | str) -> bool:
        with self._lock:
            return self._down_until.get(self._key(endpoint), 0.0) <= time.monotonic()

    def record_failure(self, endpoint: Endpoint | str) -> None:
        key = self._key(endpoint)
        with self._lock:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            if count >= self.failure_threshold:
                self._down_until[key] = time.monotonic() + self.cooldown_s
                self._failures[key] = 0
                logger.warning("Endpoint %s marked down for %.0f s", key, self.cooldown_s)

    def record_success(self, endpoint: Endpoint | str) -> None:
        key = self._key(endpoint)
        with self._lock:
            self._failures.pop(key, None)
            self._down_until.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._down_until.clear()


default_health = EndpointHealth()
_random = random.Random()


def choose_endpoint(
    endpoints: tuple[Endpoint, ...] | list[Endpoint],
    *,
    health: EndpointHealth,
    rng: random.Random,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> Endpoint | None:
    """Weighted random choice among untried endpoints, healthy ones first."""
    candidates = [e for e in endpoints if e.key not in exclude]
    if not candidates:
        return None
    pool = [e for e in candidates if health.is_healthy(e)] or candidates
    return rng.choices(pool, weights=[e.weight for e in pool])[0]


# -- chat templates -------------------------------------------------------------------------------

_template_cache: dict[tuple[str, str | None], str | None] = {}
# The look-up in flight per key: a burst of first answers waits for one, not one each.
_template_loads: dict[tuple[str, str | None], asyncio.Task[str | None]] = {}


def clear_template_cache() -> None:
    _template_cache.clear()
    _template_loads.clear()


def _read_local_template(source: str) -> str | None:
    """A chat template from a tokenizer directory, or from the local hub cache (never fetched)."""
    path = Path(source).expanduser()
    if path.is_dir():
        jinja_file, config_file = path / "chat_template.jinja", path / "tokenizer_config.json"
    else:
        try:
            found = [
                try_to_load_from_cache(source, f)
                for f in ("chat_template.jinja", "tokenizer_config.json")
            ]
        except Exception:  # not a repo id
            return None
        jinja_file, config_file = (Path(f) if isinstance(f, str) else None for f in found)
    if jinja_file is not None and jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8")
    if config_file is not None and config_file.is_file():
        try:
            template = json.loads(config_file.read_text(encoding="utf-8")).get("chat_template")
        except ValueError:
            return None
        if isinstance(template, list):  # named templates: take the default one
            template = next(
                (t.get("template") for t in template if t.get("name") == "default"), None
            )
        return template if isinstance(template, str) else None
    return None


async def fetch_chat_template(
    endpoint: Endpoint, *, tokenizer: str | None = None, client: httpx.AsyncClient | None = None
) -> str | None:
    """The model's own chat template, when this machine has it; ``None`` means ChatML.

    From ``tokenizer`` (a directory or a cached repo id), else from the TGI server's
    ``/info`` ``model_id`` when that names a directory or a cached repo. Cached per endpoint.
    """
    cache_key = (endpoint.key, tokenizer)
    if cache_key in _template_cache:
        return _template_cache[cache_key]
    load = _template_loads.get(cache_key)
    if load is None or load.get_loop() is not asyncio.get_running_loop():
        load = asyncio.create_task(_load_chat_template(endpoint, tokenizer, client))
        _template_loads[cache_key] = load
        load.add_done_callback(lambda done: _forget_load(cache_key, done))
    return await asyncio.shield(load)  # one waiter giving up does not stop the others' load


def _forget_load(cache_key: tuple[str, str | None], load: asyncio.Task[str | None]) -> None:
    if _template_loads.get(cache_key) is load:
        del _template_loads[cache_key]


async def _load_chat_template(
    endpoint: Endpoint, tokenizer: str | None, client: httpx.AsyncClient | None
) -> str | None:
    cache_key = (endpoint.key, tokenizer)
    source = tokenizer
    if source is None and endpoint.type == "tgi":
        try:
            info = await _get_json(endpoint, "/info", client)
        except (httpx.HTTPError, ValueError) as exc:
            logger.info("No /info from %s (%s); not caching the template", endpoint.url, exc)
            return None
        source = info.get("model_id") if isinstance(info, dict) else None
    template = await asyncio.to_thread(_read_local_template, source) if source else None
    _template_cache[cache_key] = template
    return template


async def _get_json(endpoint: Endpoint, path: str, client: httpx.AsyncClient | None) -> Any:
    headers = _headers(endpoint)
    if client is None:
        async with httpx.AsyncClient(timeout=STATUS_TIMEOUT_S) as own:
            response = await own.get(endpoint.url + path, headers=headers)
    else:
        response = await client.get(endpoint.url + path, headers=headers, timeout=STATUS_TIMEOUT_S)
    response.raise_for_status()
    return response.json()


# -- requests -------------------------------------------------------------------------------------


def _headers(endpoint: Endpoint) -> dict[str, str]:
    headers = dict(endpoint.default_headers)
    if endpoint.type == "tgi" and endpoint.authorization:
        headers["Authorization"] = endpoint.authorization
    if endpoint.type == "openai" and endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    return headers


async def _request_body(
    model: ModelSpec,
    endpoint: Endpoint,
    *,
    messages: list[ChatMessage],
    preprompt: str | None,
    continue_message: bool,
    parameters: Mapping[str, Any],
    client: httpx.AsyncClient,
) -> dict[str, Any]:
    needs_prompt = endpoint.type == "tgi" or endpoint.completion == "completions"
    if endpoint.type == "openai":
        messages = truncate_messages(messages, parameters.get("truncate"))
    template = None
    if needs_prompt and not model.chat_prompt_template:
        template = await fetch_chat_template(endpoint, tokenizer=model.tokenizer, client=client)
    try:
        if needs_prompt:
            prompt = build_prompt(
                model,
                messages,
                preprompt=preprompt,
                continue_message=continue_message,
                tokenizer_template=template,
            )
        else:
            chat = build_chat_messages(model, messages, preprompt)
    except PromptTemplateError as exc:
        raise EndpointError(str(exc)) from None
    if endpoint.type == "tgi":
        params = {k: v for k, v in parameters.items() if k not in _TGI_IGNORED_PARAMETERS}
        params.update(return_full_text=False, details=True)
        return {"inputs": prompt, "parameters": params, "stream": True}
    body: dict[str, Any] = {"model": model.id, "stream": True}
    if needs_prompt:
        body["prompt"] = prompt
    else:
        body["messages"] = chat
    for name, wire_name in _OPENAI_PARAMETERS.items():
        if parameters.get(name) is not None:
            body[wire_name] = parameters[name]
    body.update(endpoint.extra_body)
    return body


def _error_detail(payload: Any) -> str | None:
    """The readable text of a TGI (``{"error": str}``) or OpenAI (``{"error": {...}}``) error."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    if isinstance(error, str) and error:
        return error
    detail = payload.get("detail") or payload.get("message")
    return detail if isinstance(detail, str) else None


async def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    raw = await response.aread()
    try:
        detail = _error_detail(json.loads(raw))
    except ValueError:
        detail = None
    detail = detail or raw.decode(errors="replace").strip()[:500] or response.reason_phrase
    status = response.status_code
    if status == 422:  # validation: the server's own words (e.g. the input is too long)
        raise EndpointError(detail, status=status)
    if status >= 500 or status == 429:
        raise EndpointError(
            ERR_SERVER.format(status=status, detail=detail), status=status, retryable=True
        )
    raise EndpointError(ERR_REJECTED.format(status=status, detail=detail), status=status)


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` payloads of a server-sent event stream (``data:`` with or without a space)."""
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data = line[5:]
            yield data[1:] if data.startswith(" ") else data


def _parse_event(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise EndpointError(ERR_BAD_RESPONSE) from None


def _finish(
    text: str, finish_reason: str | None, stops: list[str], generated_tokens: int | None
) -> StreamResult:
    """chat-ui's end of answer: trim, strip a trailing stop string, work out `interrupted`."""
    text = text.rstrip()
    stopped = False
    for stop in stops:
        if stop and text.endswith(stop):
            text = text[: -len(stop)]
            stopped = True
    interrupted = not stopped and finish_reason not in _FINISHED_REASONS
    return StreamResult(text, finish_reason, interrupted, generated_tokens)


async def _stream_tgi(
    response: httpx.Response, stops: list[str]
) -> AsyncIterator[StreamChunk | StreamResult]:
    async for data in _sse_data(response):
        event = _parse_event(data)
        detail = _error_detail(event)
        if detail is not None and "token" not in event:
            raise EndpointError(detail, retryable=True)
        token = event.get("token") or {}
        final_text = event.get("generated_text")
        is_last_stop = final_text is not None and token.get("text") in stops
        if token.get("text") and not token.get("special") and not is_last_stop:
            yield StreamChunk(token["text"], token.get("id"), False)
        if final_text is not None:
            details = event.get("details") or {}
            finish_reason = details.get("finish_reason")
            if finish_reason is None and token.get("special"):
                finish_reason = "eos_token"  # servers that send no details
            yield _finish(final_text, finish_reason, stops, details.get("generated_tokens"))
            return
    raise EndpointError(ERR_INCOMPLETE, retryable=True)


async def _stream_openai(
    response: httpx.Response, stops: list[str], *, chat: bool
) -> AsyncIterator[StreamChunk | StreamResult]:
    text, finish_reason, generated_tokens = "", None, None
    thinking = False  # inside reasoning deltas, written as a <think> block of the text
    async for data in _sse_data(response):
        if data.strip() == "[DONE]":
            break
        event = _parse_event(data)
        detail = _error_detail(event)
        if detail is not None:
            raise EndpointError(detail, retryable=True)
        usage = event.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            generated_tokens = usage["completion_tokens"]
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            piece = delta.get("content") if chat else choice.get("text")
            reasoning = (delta.get("reasoning_content") or delta.get("reasoning")) if chat else None
            if reasoning and isinstance(reasoning, str):
                reasoning = reasoning if thinking else "<think>" + reasoning
                thinking = True
                text += reasoning
                yield StreamChunk(reasoning)
            if piece and thinking:
                piece, thinking = "</think>" + piece, False
            if piece:
                text += piece
                yield StreamChunk(piece)
            finish_reason = choice.get("finish_reason") or finish_reason
    else:
        if finish_reason is None:
            raise EndpointError(ERR_INCOMPLETE, retryable=True)
    if thinking:
        text += "</think>"
    yield _finish(text, finish_reason, stops, generated_tokens)


async def _stream_endpoint(
    model: ModelSpec,
    endpoint: Endpoint,
    *,
    messages: list[ChatMessage],
    preprompt: str | None,
    continue_message: bool,
    parameters: Mapping[str, Any],
    client: httpx.AsyncClient,
) -> AsyncIterator[StreamChunk | StreamResult]:
    """One attempt on one endpoint; transport errors become `EndpointError`."""
    body = await _request_body(
        model,
        endpoint,
        messages=messages,
        preprompt=preprompt,
        continue_message=continue_message,
        parameters=parameters,
        client=client,
    )
    stops = list(parameters.get("stop") or ())
    try:
        async with client.stream(
            "POST",
            endpoint.request_url,
            json=body,
            headers=_headers(endpoint),
            params=endpoint.default_query or None,
        ) as response:
            await _raise_for_status(response)
            if endpoint.type == "tgi":
                events = _stream_tgi(response, stops)
            else:
                events = _stream_openai(
                    response, stops, chat=endpoint.completion == "chat_completions"
                )
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
    health: EndpointHealth | None = None,
    parameters: Mapping[str, Any] | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[StreamChunk | StreamResult]:
    """Stream one answer: `StreamChunk` items, then exactly one `StreamResult`.

    ``parameters`` override the model's (e.g. a smaller ``max_new_tokens`` for titles).
    Raises `EndpointError`: before the first chunk only once every endpoint failed; after it,
    on the first error.
    """
    health = health or default_health
    rng = rng or _random
    merged = {**model.parameters, **(parameters or {})}
    own_client = client is None
    if client is None:
        client = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
    tried: set[str] = set()
    last_error: EndpointError | None = None
    try:
        while True:
            endpoint = choose_endpoint(model.endpoints, health=health, rng=rng, exclude=tried)
            if endpoint is None:
                raise last_error or EndpointError(ERR_NO_ENDPOINTS)
            tried.add(endpoint.key)
            started = False
            attempt = _stream_endpoint(
                model,
                endpoint,
                messages=messages,
                preprompt=preprompt,
                continue_message=continue_message,
                parameters=merged,
                client=client,
            )
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
                    raise
                logger.warning("Endpoint %s failed before the first token: %s", endpoint.key, exc)
                last_error = exc
                continue
            health.record_success(endpoint)
            return
    finally:
        if own_client:
            await client.aclose()


TOOL_ROUND_TIMEOUT_S = 120.0


async def tool_completion(
    model: ModelSpec,
    *,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    max_tokens: int,
    client: httpx.AsyncClient,
) -> dict[str, Any]:
    """One non-streamed OpenAI chat answer with `tools` (`tool_choice: "auto"`) from one of
    the model's endpoints (a TGI server's `/v1/chat/completions`, or the OpenAI base URL's):
    the assistant message, with its `tool_calls` if it made any. Raises `EndpointError`."""
    endpoint = choose_endpoint(model.endpoints, health=default_health, rng=_random)
    if endpoint is None:
        raise EndpointError(ERR_NO_ENDPOINTS)
    url = endpoint.url + ("/v1" if endpoint.type == "tgi" else "") + "/chat/completions"
    body = {
        "model": model.id,
        "messages": messages,
        "tools": tools,
        "tool_choice": "auto",
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    try:
        response = await client.post(
            url, json=body, headers=_headers(endpoint), timeout=TOOL_ROUND_TIMEOUT_S
        )
        await _raise_for_status(response)
        message = (response.json().get("choices") or [{}])[0].get("message")
    except httpx.HTTPError as exc:
        raise EndpointError(ERR_CONNECT, retryable=True) from exc
    except (ValueError, AttributeError, IndexError, TypeError) as exc:
        raise EndpointError(ERR_BAD_RESPONSE) from exc
    if not isinstance(message, dict):
        raise EndpointError(ERR_BAD_RESPONSE)
    return message


async def generate_text(
    model: ModelSpec,
    prompt_messages: list[ChatMessage],
    max_new_tokens: int,
    *,
    client: httpx.AsyncClient | None = None,
    health: EndpointHealth | None = None,
) -> str:
    """The whole answer at once (for titles and other short tasks)."""
    result = ""
    stream = stream_generation(
        model,
        messages=prompt_messages,
        preprompt=None,
        client=client,
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
    headers = _headers(endpoint)
    try:
        if endpoint.type == "tgi":
            health = await client.get(
                endpoint.url + "/health", headers=headers, timeout=STATUS_TIMEOUT_S
            )
            result["status"] = health.status_code
            result["ok"] = health.status_code == 200
            info = await client.get(
                endpoint.url + "/info", headers=headers, timeout=STATUS_TIMEOUT_S
            )
            if info.status_code == 200:
                result["info"] = info.json()
        else:
            models = await client.get(
                endpoint.url + "/models",
                headers=headers,
                params=endpoint.default_query or None,
                timeout=STATUS_TIMEOUT_S,
            )
            result["status"] = models.status_code
            result["ok"] = models.status_code == 200
            if result["ok"]:
                data = models.json().get("data") or []
                result["info"] = {"models": [m.get("id") for m in data if isinstance(m, dict)]}
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
