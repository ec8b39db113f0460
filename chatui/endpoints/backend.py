"""The vocabulary every endpoint type shares: what a stream yields, the errors users see, the
`Backend` interface a type implements (headers, body, parse, status), and the reading of
server-sent events and error bodies.

Must not import Django, the database layer or another module of this package.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

if TYPE_CHECKING:
    from chatui.models_config import Endpoint, ModelSpec
    from chatui.prompting import ChatMessage

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
    # The prompt's tokens as the server counted them, when it says (not part of equality).
    prompt_tokens: int | None = field(default=None, compare=False)


class EndpointError(Exception):
    """A model server could not give an answer; ``message`` is fit to show to users."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


StreamEvents = AsyncIterator[StreamChunk | StreamResult]


@dataclass(frozen=True)
class Ask:
    """One answer to stream: the model, the conversation and the merged parameters."""

    model: ModelSpec
    messages: list[ChatMessage]
    preprompt: str | None
    parameters: Mapping[str, Any]
    continue_message: bool = False

    @property
    def stops(self) -> list[str]:
        return list(self.parameters.get("stop") or ())


class Backend(Protocol):
    """What one endpoint type (TGI, OpenAI-compatible) knows of its wire format."""

    # Whether the server cuts a long prompt to `truncate` tokens itself (else the oldest
    # messages are dropped here, see `chatui.prompting.truncate_messages`).
    truncates_prompt: bool

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        """The request headers (authorization included)."""
        ...

    def needs_prompt(self, endpoint: Endpoint) -> bool:
        """Whether the body carries a prompt rendered here (else chat messages)."""
        ...

    def body(self, endpoint: Endpoint, ask: Ask, prompt: str | None) -> dict[str, Any]:
        """The streamed generation request: `prompt` when `needs_prompt`, else the messages."""
        ...

    def stream_url(self, endpoint: Endpoint) -> str:
        """Where a streamed generation is POSTed."""
        ...

    def chat_url(self, endpoint: Endpoint) -> str:
        """The server's OpenAI chat completions route (the tool round's)."""
        ...

    def parse(self, endpoint: Endpoint, response: httpx.Response, stops: list[str]) -> StreamEvents:
        """The response's chunks, then exactly one `StreamResult` (else `EndpointError`)."""
        ...

    async def status(
        self, endpoint: Endpoint, client: httpx.AsyncClient, result: dict[str, Any]
    ) -> None:
        """Fills the admin page's `result` (`ok`, `status`, `info`); HTTP errors propagate."""
        ...

    async def template_info(
        self, endpoint: Endpoint, client: httpx.AsyncClient | None
    ) -> dict[str, Any] | None:
        """What the server says of its model (`chat_template`, `model_id`), or None when it
        has no such route. Raises on a transport error (the caller retries later)."""
        ...


def error_detail(payload: Any) -> str | None:
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


async def raise_for_status(response: httpx.Response) -> None:
    """An error answer as the `EndpointError` it means (5xx and 429 may be retried)."""
    if response.status_code < 400:
        return
    raw = await response.aread()
    try:
        detail = error_detail(json.loads(raw))
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


async def sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` payloads of a server-sent event stream (``data:`` with or without a space)."""
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data = line[5:]
            yield data[1:] if data.startswith(" ") else data


def parse_event(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise EndpointError(ERR_BAD_RESPONSE) from None


def finish(
    text: str,
    finish_reason: str | None,
    stops: list[str],
    generated_tokens: int | None,
    prompt_tokens: int | None = None,
) -> StreamResult:
    """chat-ui's end of answer: trim, strip a trailing stop string, work out `interrupted`."""
    text = text.rstrip()
    stopped = False
    for stop in stops:
        if stop and text.endswith(stop):
            text = text[: -len(stop)]
            stopped = True
    interrupted = not stopped and finish_reason not in _FINISHED_REASONS
    return StreamResult(text, finish_reason, interrupted, generated_tokens, prompt_tokens)


async def status_get(
    url: str, headers: dict[str, str], client: httpx.AsyncClient | None, **kwargs: Any
) -> httpx.Response:
    """A GET with the status timeout, on `client` or a client of its own."""
    if client is None:
        async with httpx.AsyncClient(timeout=STATUS_TIMEOUT_S) as own:
            return await own.get(url, headers=headers, **kwargs)
    return await client.get(url, headers=headers, timeout=STATUS_TIMEOUT_S, **kwargs)
