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


async def with_keepalive(source: AsyncIterator[bytes], interval: float) -> AsyncIterator[bytes]:
    """Pass `source` through, sending a comment whenever it is silent for `interval` seconds.

    NOTE: the pending `anext` runs as its own task and is never cancelled by a timeout (that
    would break the generator); it is cancelled only when the stream itself ends early.
    """
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield KEEPALIVE
                continue
            finished, pending = pending, None
            try:
                chunk = finished.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response that closes its iterator however the stream ends."""

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
        super().__init__(
            with_keepalive(content, keepalive_interval), status_code=status_code, headers=merged
        )

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            # NOTE: on disconnect Starlette cancels this task while the iterator sits at a
            # `yield`; without an explicit, shielded close the engine would keep generating
            # until garbage collection finalised the generator.
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
