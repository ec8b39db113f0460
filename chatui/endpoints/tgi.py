"""Text Generation Inference: a prompt rendered here, streamed from ``POST /`` (or
``/generate_stream``) as TGI's token events; ``/health`` and ``/info`` for the admin page, and
``/info``'s ``chat_template`` (this project's server adds it; TGI's own lacks it).

Must not import Django or the database layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

import chatui.endpoints.backend as wire

if TYPE_CHECKING:
    from chatui.endpoints.backend import Ask
    from chatui.models_config import Endpoint

_IGNORED_PARAMETERS = frozenset({"presence_penalty"})  # TGI has none


class TGI:
    """The `Backend` of ``"type": "tgi"`` endpoints."""

    truncates_prompt = True

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        headers = dict(endpoint.default_headers)
        if endpoint.authorization:
            headers["Authorization"] = endpoint.authorization
        return headers

    def needs_prompt(self, endpoint: Endpoint) -> bool:
        return True

    def body(self, endpoint: Endpoint, ask: Ask, prompt: str | None) -> dict[str, Any]:
        params = {k: v for k, v in ask.parameters.items() if k not in _IGNORED_PARAMETERS}
        params.update(return_full_text=False, details=True)
        return {"inputs": prompt, "parameters": params, "stream": True}

    def stream_url(self, endpoint: Endpoint) -> str:
        return endpoint.url + endpoint.stream_path

    def chat_url(self, endpoint: Endpoint) -> str:
        return endpoint.url + "/v1/chat/completions"

    async def parse(
        self, endpoint: Endpoint, response: httpx.Response, stops: list[str]
    ) -> wire.StreamEvents:
        async for data in wire.sse_data(response):
            event = wire.parse_event(data)
            detail = wire.error_detail(event)
            if detail is not None and "token" not in event:
                raise wire.EndpointError(detail, retryable=True)
            token = event.get("token") or {}
            final_text = event.get("generated_text")
            is_last_stop = final_text is not None and token.get("text") in stops
            if token.get("text") and not token.get("special") and not is_last_stop:
                yield wire.StreamChunk(token["text"], token.get("id"), False)
            if final_text is not None:
                details = event.get("details") or {}
                finish_reason = details.get("finish_reason")
                if finish_reason is None and token.get("special"):
                    finish_reason = "eos_token"  # servers that send no details
                yield wire.finish(
                    final_text,
                    finish_reason,
                    stops,
                    details.get("generated_tokens"),
                    details.get("input_length"),
                )
                return
        raise wire.EndpointError(wire.ERR_INCOMPLETE, retryable=True)

    async def status(
        self, endpoint: Endpoint, client: httpx.AsyncClient, result: dict[str, Any]
    ) -> None:
        headers = self.headers(endpoint)
        health = await wire.status_get(endpoint.url + "/health", headers, client)
        result["status"] = health.status_code
        result["ok"] = health.status_code == 200
        info = await wire.status_get(endpoint.url + "/info", headers, client)
        if info.status_code == 200:
            result["info"] = info.json()

    async def template_info(
        self, endpoint: Endpoint, client: httpx.AsyncClient | None
    ) -> dict[str, Any] | None:
        response = await wire.status_get(endpoint.url + "/info", self.headers(endpoint), client)
        response.raise_for_status()
        info = response.json()
        return info if isinstance(info, dict) else None
