"""TGI's `--payload-limit`: a body over the limit gets 413 before any route reads or parses it.

A declared `Content-Length` over the limit is refused without reading the body; a body of
unknown length (chunked) is read here, at most the limit, and replayed to the route, so no
route ever holds more than the limit in memory. Pure ASGI; must not import the engine.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from inference.api.errors import PayloadTooLarge
from inference.config import DEFAULT_PAYLOAD_LIMIT

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# NOTE: a refused body is read and dropped (up to this much) before the answer, so a client
# still sending sees the 413 instead of a connection reset; beyond it the connection closes.
DRAIN_LIMIT = 64 * 1024 * 1024


def declared_length(scope: Scope) -> int | None:
    """The request's `Content-Length`, or None when absent or unreadable."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class PayloadLimit:
    """ASGI middleware refusing bodies over `limit` bytes with TGI's error shape."""

    def __init__(self, app: App, limit: int = DEFAULT_PAYLOAD_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None:
            if length > self.limit:
                await self.refuse(receive, send, already=0)
            else:  # NOTE: the HTTP server never delivers more than the declared length
                await self.app(scope, receive, send)
            return
        body, more, over = await self.read_body(receive)
        if over:
            await self.refuse(receive, send, already=len(body), more=more)
            return
        await self.app(scope, replay(body, receive), send)

    async def read_body(self, receive: Receive) -> tuple[bytes, bool, bool]:
        """(body so far, more to come, over the limit) for a body of unknown length."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left; the route will see the same disconnect
            chunk = message.get("body", b"")
            more = bool(message.get("more_body", False))
            size += len(chunk)
            if size > self.limit:
                return b"", more, True
            chunks.append(chunk)
        return b"".join(chunks), more, False

    async def refuse(
        self, receive: Receive, send: Send, *, already: int, more: bool = True
    ) -> None:
        drained = already
        while more and drained < DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                return  # nobody is listening any more
            drained += len(message.get("body", b""))
            more = bool(message.get("more_body", False))
        error = PayloadTooLarge(self.limit)
        body = json.dumps(error.payload()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over the buffered body once, then the connection's own events."""
    pending = True

    async def receive_replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_replayed
