"""A fake TGI server: ``/generate``, ``/generate_stream``, the compat ``/`` route, health, info.

It speaks TGI's wire protocol: SSE events with a token each and the details on the last one,
``{"error", "error_type"}`` bodies, and ``data:{json}`` framing when ``sse_space=False``.

This module must not import Django or anything from ``chatui``: it stands in for the far side.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.chatui.fake_endpoints.script import (
    TGI_GENERATION_ERROR,
    TGI_VALIDATION_ERROR,
    Script,
    Token,
)
from tests.chatui.fake_endpoints.server import Drop, FakeServer, Stall, sse


class FakeTGI(FakeServer):
    """A TGI server: ``POST /``, ``/generate``, ``/generate_stream``, ``GET /health``, ``/info``.

    ``sse_space=False`` frames events as ``data:{json}`` (what TGI's axum router sends);
    the default ``data: {json}`` is what most other servers send. Clients must read both.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        model_id: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
        sse_space: bool = True,
        healthy: bool = True,
        chat_template: str | None = None,
    ) -> None:
        super().__init__(script)
        self.model_id = model_id
        self.chat_template = chat_template  # in /info, as this project's server sends it
        self.sse_space = sse_space
        self.healthy = healthy

    def _routes(self) -> list[Route]:
        return [
            Route("/", self._compat, methods=["POST"]),
            Route("/generate", self._generate, methods=["POST"]),
            Route("/generate_stream", self._generate_stream, methods=["POST"]),
            Route("/health", self._health, methods=["GET"]),
            Route("/info", self._info, methods=["GET"]),
        ]

    async def _health(self, request: Request) -> Response:
        await self._record(request)
        if not self.healthy:
            return JSONResponse({"error": "unhealthy", "error_type": "healthcheck"}, 503)
        return Response(status_code=200)

    async def _info(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse(
            {
                "model_id": self.model_id,
                "model_sha": None,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": 128,
                "max_best_of": 2,
                "max_stop_sequences": 4,
                "max_input_tokens": 4095,
                "max_total_tokens": 4096,
                "validation_workers": 2,
                "max_client_batch_size": 4,
                "router": "text-generation-router",
                "version": "3.0.0",
                "sha": None,
                "docker_label": None,
                **({"chat_template": self.chat_template} if self.chat_template else {}),
            }
        )

    async def _compat(self, request: Request) -> Response:
        body = await self._record(request)
        if isinstance(body, dict) and body.get("stream"):
            return await self._stream(request, self._next_script())
        response = await self._complete(self._next_script())
        if response.status_code == 200:  # the compat route answers a list
            return JSONResponse([json.loads(response.body)])
        return response

    async def _generate(self, request: Request) -> Response:
        await self._record(request)
        return await self._complete(self._next_script())

    async def _generate_stream(self, request: Request) -> Response:
        await self._record(request)
        return await self._stream(request, self._next_script())

    # -- behaviour ---------------------------------------------------------------------------
    def _tokens(self, script: Script) -> list[Token]:
        tokens = []
        for i, t in enumerate(script.tokens):
            token = t if isinstance(t, Token) else Token(t)
            if token.id is None:
                token = Token(token.text, 100 + i, token.special, token.logprob)
            tokens.append(token)
        if self._finish(script) == "eos_token" and script.eos is not None:
            tokens.append(script.eos)
        return tokens

    @staticmethod
    def _finish(script: Script) -> str:
        return script.finish_reason or "eos_token"

    def _error_body(self, script: Script) -> dict[str, str]:
        default = TGI_VALIDATION_ERROR if script.status == 422 else TGI_GENERATION_ERROR
        error_type = "validation" if script.status == 422 else script.error_type
        return {"error": script.error or default, "error_type": error_type}

    async def _complete(self, script: Script) -> Response:
        if script.fail == "hang":
            await self._sleep(script.hang_seconds)
        if script.fail in ("status", "hang"):
            return JSONResponse(self._error_body(script), script.status)
        tokens = self._tokens(script)
        text = "".join(t.text for t in tokens if not t.special)
        return JSONResponse(
            {
                "generated_text": text,
                "details": {
                    "finish_reason": self._finish(script),
                    "generated_tokens": len(tokens),
                    "seed": None,
                    "prefill": [],
                    "tokens": [_token_json(t) for t in tokens],
                },
            }
        )

    async def _stream(self, request: Request, script: Script) -> Response:
        if script.fail == "hang":
            await self._sleep(script.hang_seconds)
            return JSONResponse(self._error_body(script), 504)
        if script.fail == "status":
            return JSONResponse(self._error_body(script), script.status)
        return StreamingResponse(
            self._paced(request, script, self._frames(script)),
            media_type="text/event-stream",
        )

    def _frames(self, script: Script) -> Iterator[str | Drop | Stall]:
        tokens = self._tokens(script)
        text = ""
        for index, token in enumerate(tokens):
            if script.fail and index == script.fail_after:
                yield from self._failure(script)
                return
            if not token.special:
                text += token.text
            last = index == len(tokens) - 1
            event = {
                "index": index,
                "token": _token_json(token),
                "top_tokens": [],
                "generated_text": text if last else None,
                "details": (
                    {
                        "finish_reason": self._finish(script),
                        "generated_tokens": len(tokens),
                        "input_length": 7,
                        "seed": None,
                    }
                    if last
                    else None
                ),
            }
            yield sse(event, space=self.sse_space)
        if script.fail and script.fail_after >= len(tokens):
            yield from self._failure(script)


def _token_json(token: Token) -> dict[str, Any]:
    return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": token.special}
