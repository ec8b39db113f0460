"""A fake OpenAI-compatible server under ``/v1``: models, chat/completions, completions.

It speaks OpenAI's wire protocol: chunks with a delta (chat) or text (completions), a usage chunk,
``data: [DONE]`` at the end, and ``{"error": {"message", "type", ...}}`` bodies.

This module must not import Django or anything from ``chatui``: it stands in for the far side.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.chatui.fake_endpoints.script import OPENAI_ERROR, Script, Token
from tests.chatui.fake_endpoints.server import Drop, FakeServer, Stall, sse


class FakeOpenAI(FakeServer):
    """An OpenAI-compatible server under ``/v1``: models, chat/completions, completions.

    ``base_url`` is what a client configures (``http://127.0.0.1:PORT/v1``).
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        models: Sequence[str | dict[str, Any]] = ("HuggingFaceTB/SmolLM2-135M-Instruct",),
        usage: bool = True,
    ) -> None:
        super().__init__(script)
        self.models = list(models)
        self.usage = usage

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def _routes(self) -> list[Route]:
        return [
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
            Route("/health", self._health, methods=["GET"]),
        ]

    async def _health(self, request: Request) -> Response:
        await self._record(request)
        return Response(status_code=200)

    async def _models(self, request: Request) -> Response:
        await self._record(request)
        data = [
            m if isinstance(m, dict) else {"id": m, "object": "model", "owned_by": "fake"}
            for m in self.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        return await self._answer(request, chat=True)

    async def _completions(self, request: Request) -> Response:
        return await self._answer(request, chat=False)

    def _error_body(self, script: Script) -> dict[str, Any]:
        return {
            "error": {
                "message": script.error or OPENAI_ERROR,
                "type": "invalid_request_error" if script.status < 500 else "server_error",
                "param": None,
                "code": None,
            }
        }

    async def _answer(self, request: Request, *, chat: bool) -> Response:
        body = await self._record(request)
        script = self._next_script()
        if script.fail == "hang":
            await self._sleep(script.hang_seconds)
            return JSONResponse(self._error_body(script), 504)
        if script.fail == "status":
            return JSONResponse(self._error_body(script), script.status)
        model = body.get("model", "") if isinstance(body, dict) else ""
        texts = [t.text if isinstance(t, Token) else t for t in script.tokens]
        finish = script.finish_reason or "stop"
        if not (isinstance(body, dict) and body.get("stream")):
            text = "".join(texts)
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            object_ = "chat.completion" if chat else "text_completion"
            return JSONResponse(_envelope(object_, model, [choice], usage=_usage(len(texts))))
        return StreamingResponse(
            self._paced(request, script, self._frames(script, texts, finish, model, chat=chat)),
            media_type="text/event-stream",
        )

    def _frames(
        self, script: Script, texts: list[str], finish: str, model: str, *, chat: bool
    ) -> Iterator[str | Drop | Stall]:
        chunk_object = "chat.completion.chunk" if chat else "text_completion"

        def chunk(content: str | None, finish_reason: str | None, role: bool = False) -> str:
            if chat:
                delta: dict[str, Any] = {}
                if role:
                    delta["role"] = "assistant"
                if content is not None:
                    delta["content"] = content
                choice: dict[str, Any] = {"index": 0, "delta": delta}
            else:
                choice = {"index": 0, "text": content or ""}
            choice["finish_reason"] = finish_reason
            return sse(_envelope(chunk_object, model, [choice]))

        if chat:
            yield chunk("", None, role=True)
            for thought in script.reasoning:
                choice = {
                    "index": 0,
                    "delta": {"reasoning_content": thought},
                    "finish_reason": None,
                }
                yield sse(_envelope(chunk_object, model, [choice]))
        for index, text in enumerate(texts):
            if script.fail and index == script.fail_after:
                yield from self._failure(script)
                return
            yield chunk(text, None)
        if script.fail and script.fail_after >= len(texts):
            yield from self._failure(script)
            return
        yield chunk(None if chat else "", finish)
        if self.usage:
            yield sse(_envelope(chunk_object, model, [], usage=_usage(len(texts))))
        yield sse("[DONE]")


def _envelope(
    object_: str, model: str, choices: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """An answer or a chunk: the fixed id and time around `choices` (and `extra`, e.g. usage)."""
    return {
        "id": "cmpl-fake",
        "object": object_,
        "created": 0,
        "model": model,
        "choices": choices,
        **extra,
    }


def _usage(num_completion_tokens: int) -> dict[str, int]:
    """The usage block: a fixed 7-token prompt and one token per scripted text."""
    return {
        "prompt_tokens": 7,
        "completion_tokens": num_completion_tokens,
        "total_tokens": 7 + num_completion_tokens,
    }
