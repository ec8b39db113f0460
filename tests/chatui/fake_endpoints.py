"""Fake TGI and OpenAI-compatible servers on real sockets, for tests of code that calls them.

Each server is a small Starlette app run by uvicorn in a background thread on a free port of
127.0.0.1. It speaks the real wire protocol (TGI's SSE framing and error bodies, OpenAI's chunks
ending with ``data: [DONE]``), follows a per-test :class:`Script` (tokens, delay per token, a
failure mode), records every request it received, and notes when a client went away in the middle
of a stream (so a Stop button can be tested end to end).

Use as a context manager::

    with FakeTGI(Script(tokens=["Hel", "lo"])) as tgi:
        httpx.post(tgi.url + "/generate", json={"inputs": "hi"})
        assert tgi.requests[0].body["inputs"] == "hi"

or through the pytest fixture factories ``fake_tgi`` / ``fake_openai`` (import them into a
conftest.py: ``from tests.chatui.fake_endpoints import fake_openai, fake_tgi``)::

    def test_x(fake_tgi):
        tgi = fake_tgi(Script(tokens=["a", "b"], delay=0.01))

``unused_url()`` gives the address of a closed port, for "connection refused".

This module must not import Django or anything from ``chatui``: it stands in for the far side.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

FailMode = Literal["status", "error_event", "hang", "stall", "drop"]

TGI_VALIDATION_ERROR = (
    "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
    "Given: 4000 `inputs` tokens and 1024 `max_new_tokens`"
)
TGI_GENERATION_ERROR = "Request failed during generation: Server error: CUDA out of memory"
OPENAI_ERROR = "The server had an error while processing your request."


@dataclass(frozen=True)
class Token:
    """One generated token as TGI reports it."""

    text: str
    id: int | None = None
    special: bool = False
    logprob: float = -0.25


EOS = Token("<|im_end|>", 2, special=True)


@dataclass
class Script:
    """What the fake does for one generation request.

    fail modes:
      - ``status``: answer ``status`` (default 500) with an error body, before any token;
      - ``error_event``: stream ``fail_after`` tokens, then an ``{"error": ...}`` event;
      - ``hang``: never send response headers (until ``hang_seconds`` or the server stops);
      - ``stall``: send headers and ``fail_after`` tokens, then go silent;
      - ``drop``: send ``fail_after`` tokens, then cut the connection mid-body.
    """

    tokens: Sequence[str | Token] = ("Hello", ",", " world", "!")
    # TGI: "eos_token" | "length" | "stop_sequence"; OpenAI: "stop" | "length".
    finish_reason: str | None = None
    delay: float = 0.0
    fail: FailMode | None = None
    fail_after: int = 0
    status: int = 500
    error: str | None = None
    error_type: str = "generation"
    hang_seconds: float = 60.0
    eos: Token | None = EOS  # TGI only: appended as a special token when finishing on EOS


@dataclass
class RecordedRequest:
    """A request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class _FakeServer:
    """uvicorn in a thread on a free port; subclasses provide ``_routes()``."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.requests: list[RecordedRequest] = []
        self.disconnected = threading.Event()  # a client left in the middle of a stream
        self.num_disconnects = 0
        self.num_completed_streams = 0
        self._scripts: deque[Script] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- configuration ----------------------------------------------------------------------
    def queue(self, *scripts: Script) -> None:
        """Scripts used by the next generation requests, one each, before ``self.script``."""
        with self._lock:
            self._scripts.extend(scripts)

    def _next_script(self) -> Script:
        with self._lock:
            return self._scripts.popleft() if self._scripts else self.script

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> _FakeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=self._routes())
        config = uvicorn.Config(
            app,
            log_level="critical",
            lifespan="off",
            http="h11",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.005)
        return self

    def request_stop(self) -> None:
        """Ask the server to stop without waiting (stop several at once, then `stop()` each)."""
        self._closing.set()
        if self._server is not None:
            self._server.should_exit = True

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for subclasses -------------------------------------------------------------
    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
        return body

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when the server is stopping."""
        deadline = time.monotonic() + seconds
        while not self._closing.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    async def _paced(
        self, request: Request, script: Script, frames: Iterator[str | _Drop | _Stall]
    ) -> AsyncIterator[str]:
        """Send frames with the script's delay, noting a client that leaves early."""
        finished = False
        try:
            for frame in frames:
                if isinstance(frame, _Stall):
                    await self._sleep(script.hang_seconds)
                    finished = True
                    return
                if isinstance(frame, _Drop):
                    finished = True
                    raise _DroppedConnection
                if script.delay:
                    await self._sleep(script.delay)
                if await request.is_disconnected():
                    return
                yield frame
            finished = True
            with self._lock:
                self.num_completed_streams += 1
        finally:
            if not finished:
                with self._lock:
                    self.num_disconnects += 1
                self.disconnected.set()

    def _routes(self) -> list[Route]:
        raise NotImplementedError


class _Drop:
    """Marker frame: cut the connection here."""


class _Stall:
    """Marker frame: go silent here."""


class _DroppedConnection(Exception):
    """Raised inside a streaming body so uvicorn aborts the connection mid-response."""


def _sse(payload: Any, *, space: bool = True) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data:{' ' if space else ''}{data}\n\n"


class FakeTGI(_FakeServer):
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

    def _frames(self, script: Script) -> Iterator[str | _Drop | _Stall]:
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
            yield _sse(event, space=self.sse_space)
        if script.fail and script.fail_after >= len(tokens):
            yield from self._failure(script)

    def _failure(self, script: Script) -> Iterator[str | _Drop | _Stall]:
        if script.fail == "error_event":
            yield _sse(self._error_body(script), space=self.sse_space)
        elif script.fail == "drop":
            yield _Drop()
        elif script.fail == "stall":
            yield _Stall()


def _token_json(token: Token) -> dict[str, Any]:
    return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": token.special}


class FakeOpenAI(_FakeServer):
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
            return JSONResponse(
                {
                    "id": "cmpl-fake",
                    "object": "chat.completion" if chat else "text_completion",
                    "created": 0,
                    "model": model,
                    "choices": [choice],
                    "usage": {
                        "prompt_tokens": 7,
                        "completion_tokens": len(texts),
                        "total_tokens": 7 + len(texts),
                    },
                }
            )
        return StreamingResponse(
            self._paced(request, script, self._frames(script, texts, finish, model, chat=chat)),
            media_type="text/event-stream",
        )

    def _frames(
        self, script: Script, texts: list[str], finish: str, model: str, *, chat: bool
    ) -> Iterator[str | _Drop | _Stall]:
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
            return _sse(
                {
                    "id": "cmpl-fake",
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": 0,
                    "model": model,
                    "choices": [choice],
                }
            )

        if chat:
            yield chunk("", None, role=True)
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
            yield _sse(
                {
                    "id": "cmpl-fake",
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": 0,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 7,
                        "completion_tokens": len(texts),
                        "total_tokens": 7 + len(texts),
                    },
                }
            )
        yield _sse("[DONE]")

    def _failure(self, script: Script) -> Iterator[str | _Drop | _Stall]:
        if script.fail == "error_event":
            yield _sse(self._error_body(script))
        elif script.fail == "drop":
            yield _Drop()
        elif script.fail == "stall":
            yield _Stall()


def unused_url() -> str:
    """The URL of a port nothing listens on: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _factory(cls: type[_FakeServer]) -> Callable[[], Iterator[Callable[..., Any]]]:
    def fixture() -> Iterator[Callable[..., Any]]:
        servers: list[_FakeServer] = []

        def make(script: Script | None = None, **kwargs: Any) -> Any:
            server = cls(script, **kwargs).start()
            servers.append(server)
            return server

        yield make
        for server in servers:
            server.request_stop()
        for server in servers:
            server.stop()

    fixture.__name__ = f"fake_{cls.__name__[4:].lower()}"
    fixture.__doc__ = f"Factory: ``make(script=None, **kwargs)`` starts a {cls.__name__}."
    return fixture


fake_tgi = pytest.fixture(_factory(FakeTGI), name="fake_tgi")
fake_openai = pytest.fixture(_factory(FakeOpenAI), name="fake_openai")
