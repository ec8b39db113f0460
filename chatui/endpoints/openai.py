"""OpenAI-compatible servers: chat messages (or a prompt rendered here, with
``"completion": "completions"``) streamed from ``/chat/completions`` or ``/completions``;
``GET /models`` for the admin page and for the model list of ``OPENAI_BASE_URL``.

Must not import Django or the database layer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

import chatui.endpoints.backend as wire
from chatui.prompting import build_chat_messages

if TYPE_CHECKING:
    from chatui.endpoints.backend import Ask
    from chatui.models_config import Endpoint

logger = logging.getLogger(__name__)

MODELS_TIMEOUT_S = 3.0
# chat-ui's fixed set of names.
_PARAMETERS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "max_new_tokens": "max_tokens",
    "stop": "stop",
}


def chat_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A model's parameters under the OpenAI chat names (those it has none for left out)."""
    return {
        wire_name: parameters[name]
        for name, wire_name in _PARAMETERS.items()
        if parameters.get(name) is not None
    }


def list_model_ids(base_url: str, api_key: str | None) -> list[str] | None:
    """Model ids from ``GET {base_url}/models`` (at start-up); ``None`` when the server cannot
    be read."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{base_url}/models", headers=headers, timeout=MODELS_TIMEOUT_S)
        response.raise_for_status()
        data = response.json().get("data", [])
        return [item["id"] for item in data if isinstance(item, dict) and "id" in item]
    except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
        logger.warning("Could not list models at %s/models: %s", base_url, exc)
        return None


def _context_length(item: dict[str, Any]) -> int | None:
    """The context a listing reports: its own (`context_length`, vLLM's `max_model_len`), else
    the largest of its providers' (the HF router's)."""
    for key in ("context_length", "max_model_len"):
        if isinstance(item.get(key), int) and item[key] > 0:
            return item[key]
    lengths = [
        p["context_length"]
        for p in item.get("providers") or ()
        if isinstance(p, dict) and isinstance(p.get("context_length"), int)
    ]
    return max(lengths) if lengths and max(lengths) > 0 else None


def model_entry(item: dict[str, Any]) -> dict[str, Any]:
    """A `/models` listing as a chat-ui model entry, with what its metadata says (as chat-ui
    reads it): images among `architecture.input_modalities` make it multimodal, a provider
    with `supports_tools` makes it `supportsTools`, and its context length `contextLength`."""
    entry: dict[str, Any] = {"id": item["id"]}
    if isinstance(item.get("description"), str) and item["description"]:
        entry["description"] = item["description"]
    architecture = item.get("architecture") if isinstance(item.get("architecture"), dict) else {}
    modalities = [str(m).lower() for m in architecture.get("input_modalities") or ()]
    if "image" in modalities or "vision" in modalities:
        entry |= {"multimodal": True, "multimodalAcceptedMimetypes": ["image/*"]}
    providers = [p for p in item.get("providers") or () if isinstance(p, dict)]
    if any(p.get("supports_tools") is True for p in providers):
        entry["supportsTools"] = True
    if (context_length := _context_length(item)) is not None:
        entry["contextLength"] = context_length
    return entry


def list_models(base_url: str, api_key: str | None) -> list[dict[str, Any]] | None:
    """The models of ``GET {base_url}/models`` as model entries (`model_entry`), at start-up;
    ``None`` when the server cannot be read."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{base_url}/models", headers=headers, timeout=MODELS_TIMEOUT_S)
        response.raise_for_status()
        data = response.json().get("data", [])
        return [
            model_entry(i) for i in data if isinstance(i, dict) and isinstance(i.get("id"), str)
        ]
    except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
        logger.warning("Could not list models at %s/models: %s", base_url, exc)
        return None


def fetch_text(url: str) -> str | None:
    """A model's ``prepromptUrl``, read once at start-up (an admin's URL: it may be private);
    ``None`` when it cannot be read."""
    try:
        response = httpx.get(url, timeout=MODELS_TIMEOUT_S, follow_redirects=True)
        response.raise_for_status()
        return response.text
    except httpx.HTTPError as exc:
        logger.warning("Could not read %s: %s", url, exc)
        return None


class OpenAI:
    """The `Backend` of ``"type": "openai"`` endpoints."""

    truncates_prompt = False

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        headers = dict(endpoint.default_headers)
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        return headers

    def needs_prompt(self, endpoint: Endpoint) -> bool:
        return endpoint.completion == "completions"

    def body(self, endpoint: Endpoint, ask: Ask, prompt: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": ask.model.id, "stream": True}
        if self.needs_prompt(endpoint):
            body["prompt"] = prompt
        else:
            body["messages"] = build_chat_messages(ask.model, ask.messages, ask.preprompt)
        for name, wire_name in _PARAMETERS.items():
            if ask.parameters.get(name) is not None:
                body[wire_name] = ask.parameters[name]
        body.update(endpoint.extra_body)
        return body

    def stream_url(self, endpoint: Endpoint) -> str:
        if endpoint.completion == "chat_completions":
            return endpoint.url + "/chat/completions"
        return endpoint.url + "/completions"

    def chat_url(self, endpoint: Endpoint) -> str:
        return endpoint.url + "/chat/completions"

    async def parse(
        self, endpoint: Endpoint, response: httpx.Response, stops: list[str]
    ) -> wire.StreamEvents:
        chat = endpoint.completion == "chat_completions"
        text, finish_reason = "", None
        generated_tokens = prompt_tokens = None
        thinking = False  # inside reasoning deltas, written as a <think> block of the text
        async for data in wire.sse_data(response):
            if data.strip() == "[DONE]":
                break
            event = wire.parse_event(data)
            detail = wire.error_detail(event)
            if detail is not None:
                raise wire.EndpointError(detail, retryable=True)
            usage = event.get("usage")
            if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
                generated_tokens = usage["completion_tokens"]
                prompt_tokens = usage.get("prompt_tokens")
            for choice in event.get("choices") or ():
                delta = choice.get("delta") or {}
                piece = delta.get("content") if chat else choice.get("text")
                reasoning = (
                    (delta.get("reasoning_content") or delta.get("reasoning")) if chat else None
                )
                if reasoning and isinstance(reasoning, str):
                    reasoning = reasoning if thinking else "<think>" + reasoning
                    thinking = True
                    text += reasoning
                    yield wire.StreamChunk(reasoning)
                if piece and thinking:
                    piece, thinking = "</think>" + piece, False
                if piece:
                    text += piece
                    yield wire.StreamChunk(piece)
                finish_reason = choice.get("finish_reason") or finish_reason
        else:
            if finish_reason is None:
                raise wire.EndpointError(wire.ERR_INCOMPLETE, retryable=True)
        if thinking:
            text += "</think>"
        yield wire.finish(text, finish_reason, stops, generated_tokens, prompt_tokens)

    async def status(
        self, endpoint: Endpoint, client: httpx.AsyncClient, result: dict[str, Any]
    ) -> None:
        params = endpoint.default_query or None
        models = await wire.status_get(
            endpoint.url + "/models", self.headers(endpoint), client, params=params
        )
        result["status"] = models.status_code
        result["ok"] = models.status_code == 200
        if result["ok"]:
            data = models.json().get("data") or []
            result["info"] = {"models": [m.get("id") for m in data if isinstance(m, dict)]}

    async def template_info(
        self, endpoint: Endpoint, client: httpx.AsyncClient | None
    ) -> dict[str, Any] | None:
        return None  # no route says; the model's `tokenizer`, else ChatML
