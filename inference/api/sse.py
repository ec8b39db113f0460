"""Server-sent events framed as TGI frames them: `data: {json}\\n\\n`, `:` comments to keep alive.

Owns the streaming response that always closes its event source, so a client that hangs up
aborts its request in the engine at once. Must not import the engine or torch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Send

KEEPALIVE = b":\n\n"
DONE = b"data: [DONE]\n\n"
DEFAULT_KEEPALIVE_SECONDS = 15.0  # axum's KeepAlive::default(), which TGI uses


def frame(payload: str) -> bytes:
    """One SSE event carrying one JSON document."""
    return b"data: " + payload.encode() + b"\n\n"


class Heartbeat:
    """Sends `KEEPALIVE` whenever nothing was sent for `interval` seconds.

    One timer per stream, re-armed from the time of the last send, so a token costs one
    clock read; racing each chunk against a timeout would cost a task and a wait per token.
    NOTE: a comment goes out only between whole chunks (never while a send is blocked), and
    `stop()` waits for one in flight, so the stream's last message is always the last sent.
    """

    def __init__(self, send: Send, interval: float) -> None:
        self._send = send
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._last_sent = self._loop.time()
        self._is_sending = False
        self._pending: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(interval, self._due)

    async def send_chunk(self, chunk: bytes) -> None:
        self._is_sending = True
        try:
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            self._is_sending = False
            self._last_sent = self._loop.time()

    def _due(self) -> None:
        now = self._loop.time()
        idle = now - self._last_sent
        if idle >= self._interval and not self._is_sending and self._pending is None:
            self._pending = self._loop.create_task(self._comment())
            idle = 0.0
        self._timer = self._loop.call_later(max(self._interval - idle, 0.0), self._due)

    async def _comment(self) -> None:
        try:
            # A chunk may have gone out between the timer and this task: then not idle.
            if self._is_sending or self._loop.time() - self._last_sent < self._interval:
                return
            with contextlib.suppress(Exception):  # the client left: the stream ends anyway
                await self.send_chunk(KEEPALIVE)
        finally:
            self._pending = None

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pending)


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response with keep-alive comments (see `Heartbeat`) that closes
    its iterator however the stream ends."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        status_code: int = 200,
        *,
        keepalive_interval: float = DEFAULT_KEEPALIVE_SECONDS,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
        super().__init__(content, status_code=status_code, headers=merged)
        self.keepalive_interval = keepalive_interval

    async def stream_response(self, send: Send) -> None:
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            heartbeat = Heartbeat(send, self.keepalive_interval)
            try:
                async for chunk in self.body_iterator:
                    await heartbeat.send_chunk(chunk)  # type: ignore[arg-type]
            finally:
                await heartbeat.stop()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # NOTE: on disconnect Starlette cancels this task while the iterator sits at a
            # `yield`; without an explicit, shielded close the engine would keep generating
            # until garbage collection finalised the generator.
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
