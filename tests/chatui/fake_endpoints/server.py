"""The fake servers' common part: uvicorn on a free port, request recording, paced streams.

:class:`FakeServer` runs a Starlette app in a background thread on a free port of 127.0.0.1,
records every request, sends streamed frames at a script's pace and notes when a client went away
in the middle of a stream. The TGI and OpenAI fakes subclass it. ``unused_url()`` gives the
address of a closed port, for "connection refused".

This module must not import Django or anything from ``chatui``: it stands in for the far side.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from tests.chatui.fake_endpoints.script import RecordedRequest, Script


class FakeServer:
    """uvicorn in a thread on a free port; subclasses give ``_routes()`` and ``_error_body()``."""

    sse_space = True  # frame events as ``data: {json}`` (False: ``data:{json}``)

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
    def start(self) -> FakeServer:
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
        self, request: Request, script: Script, frames: Iterator[str | Drop | Stall]
    ) -> AsyncIterator[str]:
        """Send frames with the script's delay, noting a client that leaves early."""
        finished = False
        try:
            for frame in frames:
                if isinstance(frame, Stall):
                    await self._sleep(script.hang_seconds)
                    finished = True
                    return
                if isinstance(frame, Drop):
                    finished = True
                    raise DroppedConnection
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

    def _error_body(self, script: Script) -> dict[str, Any]:
        raise NotImplementedError

    def _failure(self, script: Script) -> Iterator[str | Drop | Stall]:
        """The frames that end a stream the way ``script.fail`` says."""
        if script.fail == "error_event":
            yield sse(self._error_body(script), space=self.sse_space)
        elif script.fail == "drop":
            yield Drop()
        elif script.fail == "stall":
            yield Stall()

    def _routes(self) -> list[Route]:
        raise NotImplementedError


class Drop:
    """Marker frame: cut the connection here."""


class Stall:
    """Marker frame: go silent here."""


class DroppedConnection(Exception):
    """Raised inside a streaming body so uvicorn aborts the connection mid-response."""


def sse(payload: Any, *, space: bool = True) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data:{' ' if space else ''}{data}\n\n"


def unused_url() -> str:
    """The URL of a port nothing listens on: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
