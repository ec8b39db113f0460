"""Timestamps along one in-process server's token path, taken from outside its code.

`Probe` wraps an `AsyncEngine` instance (its engine's `step`, its output processor's
`process`, its `generate`) and the ASGI app (`SendStamps`), so every token of a stream gets:
when its step started and ended, how long its output processing (detokenisation, stop checks)
took, when the event loop had it (the hand-off's end), and when its SSE bytes went to the
socket. The client, a separate process, adds when it read them (`time.perf_counter` is the
same monotonic clock in every process on Linux). Nothing here changes what the server sends.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

STREAM_HEADER = b"x-bench-stream"

# The current stream's token log: set by `SendStamps` for an HTTP request, or by the caller
# that consumes `AsyncEngine.generate` itself; read where the event reaches the loop.
_STREAM_LOG: contextvars.ContextVar[list[TokenStamp] | None] = contextvars.ContextVar(
    "bench_stream_log", default=None
)


@dataclass
class TokenStamp:
    """One token's way from the engine thread to the event loop (perf_counter seconds)."""

    step_start: float
    step_end: float
    process_s: float  # the output processor's time for this token, inside the step
    loop_at: float = 0.0  # when the consumer on the event loop received the event


@dataclass
class StreamLog:
    """Every token of one stream, and when each body chunk of its response was sent."""

    tokens: list[TokenStamp] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)


class Probe:
    """Installs the wrappers on one AsyncEngine (before it starts) and keeps the logs."""

    def __init__(self, async_engine: Any) -> None:
        self.streams: dict[str, StreamLog] = {}
        self.step_seconds: list[float] = []
        self._pending: dict[int, TokenStamp] = {}  # id(event) -> its stamp, until consumed
        self._process_s: dict[int, float] = {}
        engine = async_engine.engine
        engine.step = self._timed_step(engine.step)
        engine.outputs.process = self._timed_process(engine.outputs.process)
        async_engine.generate = self._stamped_generate(async_engine.generate)

    def _timed_process(self, process: Callable) -> Callable:
        @functools.wraps(process)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            event = process(*args, **kwargs)
            self._process_s[id(event)] = time.perf_counter() - start
            return event

        return timed

    def _timed_step(self, step: Callable) -> Callable:
        @functools.wraps(step)
        def timed() -> Any:
            start = time.perf_counter()
            results = step()
            end = time.perf_counter()
            if results:
                self.step_seconds.append(end - start)
            for _, item in results:
                process_s = self._process_s.pop(id(item), 0.0)
                self._pending[id(item)] = TokenStamp(start, end, process_s)
            return results

        return timed

    def _stamped_generate(self, generate: Callable) -> Callable:
        pending = self._pending

        @functools.wraps(generate)
        def stamped(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            inner = generate(*args, **kwargs)
            log = _STREAM_LOG.get()

            async def events() -> AsyncIterator[Any]:
                try:
                    async for event in inner:
                        stamp = pending.pop(id(event), None)
                        if stamp is not None and log is not None:
                            stamp.loop_at = time.perf_counter()
                            log.append(stamp)
                        yield event
                finally:
                    await inner.aclose()

            return events()

        return stamped

    def consume(self, key: str) -> contextvars.Token:
        """Log the streams this task opens under `key` (an in-process consumer)."""
        self.streams[key] = StreamLog()
        return _STREAM_LOG.set(self.streams[key].tokens)


class SendStamps:
    """ASGI wrapper: a request carrying the `x-bench-stream` header gets its tokens logged
    under that key, and the time of every non-empty body chunk sent."""

    def __init__(self, app: Any, probe: Probe) -> None:
        self.app = app
        self.probe = probe

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        key = dict(scope.get("headers") or ()).get(STREAM_HEADER)
        if scope["type"] != "http" or key is None:
            await self.app(scope, receive, send)
            return
        log = self.probe.streams.setdefault(key.decode(), StreamLog())
        sent = log.sent_at

        async def stamped_send(message: dict) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                sent.append(time.perf_counter())
            await send(message)

        token = _STREAM_LOG.set(log.tokens)
        try:
            await self.app(scope, receive, stamped_send)
        finally:
            _STREAM_LOG.reset(token)
