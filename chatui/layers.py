"""The Redis channel layer, made to survive a Redis restart.

channels_redis keeps group memberships only in Redis and its pooled connections never retry,
so after a restart every pooled connection fails once and every group is empty: sockets stay
open but deaf, and answers running in one process stop reaching the pages of the others. This
layer:

- retries a command on a broken connection (a restart breaks every pooled one);
- remembers this process's memberships and notices, by a marker key it keeps alive in each
  Redis, when Redis lost them (a restart, a flush) or could not be reached; it then makes them
  again and calls the `on_lost` handlers, which close this process's sockets so that their
  pages reconnect and read the conversation again (events sent meanwhile are gone);
- makes the memberships again every half `group_expiry`, which otherwise drops a socket that
  stays open longer than that;
- receives through one reader task per process (`chatui.layer_reader`), so that a cancelled
  receive never loses a message of another channel.

`LAYER_FAILURES` are the exceptions a layer call raises while Redis is unreachable. Every
handler of them calls `raise_if_cancelled` first: redis-py may report a cancelled blocking
read (a `receive`) as its own timeout, and a retry loop that took that for an outage would
outlive its task's cancellation.
Must not import Django models, consumers or generation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels_redis import core
from channels_redis.utils import create_pool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatui.layer_reader import ProcessReader

logger = logging.getLogger(__name__)

LAYER_FAILURES: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
CHECK_INTERVAL_S = 0.5  # how late a restart may be noticed
MARKER_TTL_S = 30  # a marker outlives pauses of the event loop shorter than this
RETRIES = 3  # about 0.7 s of backoff: a Redis that restarts quickly is not noticed by callers

LostHandler = Callable[[], Awaitable[None]]


def raise_if_cancelled(failure: BaseException) -> None:
    """Re-raise a layer failure that stands for a cancellation of the running task.

    Cancelling a task blocked in channels_redis's `receive` can surface as redis-py's
    `TimeoutError` rather than `CancelledError`; the cancellation request is still pending on
    the task (`Task.cancelling()`), so the task must end as cancelled, not retry.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from failure


class RedisChannelLayer(ProcessReader, core.RedisChannelLayer):
    """channels_redis's layer, recovering from a Redis restart (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memberships: set[tuple[str, str]] = set()  # (group, channel) of this process
        self.lost_handlers: list[LostHandler] = []
        self.num_recoveries = 0
        self._marker = f"{self.prefix}:alive:{uuid.uuid4().hex}"
        self._is_suspect = False  # a call failed: recover at the next good check
        self._watch: asyncio.Task[None] | None = None

    def create_pool(self, index: int) -> Any:
        retry = Retry(ExponentialBackoff(cap=0.4, base=0.05), RETRIES)
        return create_pool({**self.hosts[index], "retry": retry})

    def on_lost(self, handler: LostHandler) -> None:
        """`handler` runs each time Redis lost this process's groups (after they are re-made)."""
        if handler not in self.lost_handlers:
            self.lost_handlers.append(handler)

    async def group_add(self, group: str, channel: str) -> None:
        """Also remembered, so that it is made again after a restart, even when this call
        fails (the caller may carry on without it until then)."""
        self.memberships.add((group, channel))
        self._ensure_watch()
        try:
            await super().group_add(group, channel)
        except LAYER_FAILURES:
            self._is_suspect = True
            raise

    async def group_discard(self, group: str, channel: str) -> None:
        self.memberships.discard((group, channel))
        await super().group_discard(group, channel)

    async def close_pools(self) -> None:
        self.stop_readers()
        await super().close_pools()

    def _ensure_watch(self) -> None:
        loop = asyncio.get_running_loop()
        if self._watch is None or self._watch.done() or self._watch.get_loop() is not loop:
            self._watch = loop.create_task(self._watch_forever())

    async def _watch_forever(self) -> None:
        loop = asyncio.get_running_loop()
        is_first, last_refresh = True, loop.time()
        while True:
            if not is_first:
                await asyncio.sleep(CHECK_INTERVAL_S)
            try:
                was_alive = await self._refresh_markers()
            except LAYER_FAILURES as exc:
                raise_if_cancelled(exc)
                self._is_suspect = True
                continue
            is_lost = (not was_alive and not is_first) or self._is_suspect
            is_first = False
            if is_lost or loop.time() - last_refresh >= self.group_expiry / 2:
                self._is_suspect = False
                last_refresh = loop.time()
                try:
                    await self._rejoin(notify=is_lost)
                except LAYER_FAILURES as exc:
                    raise_if_cancelled(exc)
                    self._is_suspect = True

    async def _refresh_markers(self) -> bool:
        """Whether every shard still had this process's marker (it has one again now)."""
        was_alive = True
        for index in range(self.ring_size):
            old = await self.connection(index).set(self._marker, b"1", ex=MARKER_TTL_S, get=True)
            was_alive = was_alive and old is not None
        return was_alive

    async def _rejoin(self, *, notify: bool) -> None:
        memberships = list(self.memberships)
        for group, channel in memberships:
            if (group, channel) in self.memberships:
                await super().group_add(group, channel)
        if not notify:
            return
        self.num_recoveries += 1
        logger.warning(
            "The channel layer lost this process's groups (Redis restarted or was unreachable):"
            " %d memberships made again",
            len(memberships),
        )
        for handler in list(self.lost_handlers):
            try:
                await handler()
            except Exception:
                logger.exception("A handler of a lost channel layer failed")
