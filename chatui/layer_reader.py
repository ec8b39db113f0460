"""Receiving on this process's channels without losing messages to cancelled receives.

channels_redis lets whichever `receive` call of a process holds its lock pop the next message
from Redis, for any channel of the process, and hands the others theirs through buffers. A
socket that disconnects cancels its pending `receive`, and an answer cancels its listener when
it ends; when the cancelled call held the lock, a message Redis had already popped for
another channel of the process is gone. Under reconnects that is a token missing from some
other page's stream.

`ProcessReader` pops in one task per process (and per channel prefix) that no caller cancels:
a `receive` only waits on its channel's buffer. Buffers are made when a message or a
receiver comes. A buffer goes when it is empty with nobody waiting, when its receiver is
cancelled (its consumer is going away, as channels_redis has it), or, for a channel nobody
receives on any more, after the layer's message expiry.

Mixed in before channels_redis's `RedisChannelLayer` (`chatui.layers`). Must not import Django
models, consumers or generation.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels_redis.core import BoundedQueue

logger = logging.getLogger(__name__)

READ_RETRY_S = 0.5  # after a failed pop (Redis away): the pool's own retries came first
SWEEP_EVERY_S = 10.0


@dataclass
class _Buffer:
    queue: asyncio.Queue[dict[str, Any]]
    touched: float  # loop time of the last message in or out
    num_waiting: int = 0


class ProcessReader:
    """`receive` for channels with "!" in their name through one uncancelled reader task."""

    capacity: int
    expiry: int

    if TYPE_CHECKING:  # the layer's

        def non_local_name(self, name: str) -> str: ...

        async def receive_single(self, channel: str) -> tuple[Any, dict[str, Any]]: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffers: dict[str, _Buffer] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}  # by non-local name
        self._num_waiting: dict[str, int] = {}  # receives waiting, by non-local name
        self._last_sweep = 0.0

    @property
    def num_readers(self) -> int:
        """Reader tasks popping now."""
        return sum(not reader.done() for reader in self._readers.values())

    @property
    def num_buffers(self) -> int:
        """Channels with a buffer now (each costs memory until it goes)."""
        return len(self._buffers)

    async def receive(self, channel: str) -> dict[str, Any]:
        if "!" not in channel:
            return await super().receive(channel)  # type: ignore[misc]
        buffer = self._buffer(channel)
        if buffer.queue.empty():
            message = await self._wait(channel, buffer)
        else:
            message = buffer.queue.get_nowait()
        buffer.touched = asyncio.get_running_loop().time()
        if buffer.queue.empty() and not buffer.num_waiting and self._buffers.get(channel) is buffer:
            del self._buffers[channel]
        return message

    async def _wait(self, channel: str, buffer: _Buffer) -> dict[str, Any]:
        real_channel = self.non_local_name(channel)
        buffer.num_waiting += 1
        self._num_waiting[real_channel] = self._num_waiting.get(real_channel, 0) + 1
        try:
            self._ensure_reader(real_channel)
            return await buffer.queue.get()
        except asyncio.CancelledError:
            if buffer.num_waiting == 1 and self._buffers.get(channel) is buffer:
                del self._buffers[channel]  # its consumer is going away
            raise
        finally:
            buffer.num_waiting -= 1
            self._num_waiting[real_channel] -= 1

    def _buffer(self, channel: str) -> _Buffer:
        buffer = self._buffers.get(channel)
        if buffer is None:
            queue: asyncio.Queue[dict[str, Any]] = BoundedQueue(self.capacity)
            buffer = self._buffers[channel] = _Buffer(queue, asyncio.get_running_loop().time())
        return buffer

    def _ensure_reader(self, real_channel: str) -> None:
        loop = asyncio.get_running_loop()
        reader = self._readers.get(real_channel)
        if reader is None or reader.done() or reader.get_loop() is not loop:
            self._readers[real_channel] = loop.create_task(self._read(real_channel))

    async def _read(self, real_channel: str) -> None:
        """Pops while anybody waits on a channel of `real_channel` (checked between pops, with
        no await after the check, so a receive that starts later starts a new reader)."""
        while self._num_waiting.get(real_channel):
            try:
                channels, message = await self.receive_single(real_channel)
            # Redis away (the pool retried first) or a bad message; a cancel is no Exception
            except Exception:
                logger.warning("Reading %s failed; trying again", real_channel, exc_info=True)
                await asyncio.sleep(READ_RETRY_S)
                continue
            now = asyncio.get_running_loop().time()
            for channel in channels if isinstance(channels, list) else [channels]:
                buffer = self._buffer(channel)
                buffer.queue.put_nowait(message)
                buffer.touched = now
            if now - self._last_sweep >= SWEEP_EVERY_S:
                self._sweep(now)
            await asyncio.sleep(0)  # the receivers just served run first, so the check sees
            # only those still waiting (a probe's receive leaves no pop behind)

    def _sweep(self, now: float) -> None:
        """Drops the buffers of channels nobody has received on for the layer's expiry (a
        consumer that went away between two receives, messages that came after it)."""
        self._last_sweep = now
        for channel, buffer in list(self._buffers.items()):
            if not buffer.num_waiting and now - buffer.touched > self.expiry:
                del self._buffers[channel]

    def stop_readers(self) -> None:
        """Cancels the reader tasks (the pools are closing)."""
        for reader in self._readers.values():
            reader.cancel()
        self._readers.clear()
