"""Protocol events to every socket open on a conversation, in this process and in others, and
the rule that lets a page place them: tokens carry `offset` (the message's length in UTF-16
code units, JavaScript's `string.length`, before the token), and a socket that cannot place a
token yet asks the running answer to resend its text (a resync).

The sockets of this process (`Watcher`s: `chatui.streaming.socket.ConversationSocket`) get
each event directly from the task that publishes it, in order: a channel layer hop per token
and socket would cost more than everything else on the token's path. Other processes get the
events through the Channels group `conversation_<id>` (handler `chat.event`), tagged with this
process's `Hub.origin` so that the sockets here drop the copy they also receive. Stop and resync
requests go to the group `generation_<id>` that a running answer listens on.

While a process runs many answers at once, `TokenBatcher` sends the tokens of each answer that
arrive within a short tick as one event (a valid token: the offsets are contiguous): a frame
per token costs more than the rest of the token's path. A quiet process sends every token as
it comes.

A running answer sends through its `RemoteQueue`: one task, in order, merging consecutive
tokens while a send is in flight (so a slow layer gets fewer, larger messages). Tokens go to
other processes only after one of their sockets asked for the answer's text so far (the
`generation.sync` reply, queued in the same order): before that no page there could place them.

When the Redis behind the layer restarts (`chatui.layers`), events on their way are lost:
publishing to other processes is best effort, and the layer's `on_lost` closes this
process's sockets (`Watcher.layer_lost`) so that their pages reconnect and read the
conversation again.

Below the answer, its saver and the reaper (they import this) and the socket: must not import
`chatui.streaming.answer`, `saver`, `reaper` or `socket`, consumers or views; of the
streaming package only `chatui.streaming.hub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from chatui.layers import LAYER_FAILURES, raise_if_cancelled
from chatui.streaming.hub import Watcher, get_hub

logger = logging.getLogger(__name__)

EVENT_TYPE = "chat.event"  # sockets handle it in `chat_event`
STOP_TYPE = "generation.stop"
SYNC_TYPE = "generation.sync"
# NOTE: not 1012 (service restart): autobahn, under daphne, sends only 1000 and 3000-4999.
CLOSE_RECONNECT = 4012  # the page reconnects and reads the conversation again


def utf16_len(text: str) -> int:
    """Length as JavaScript counts it (surrogate pairs count 2)."""
    return len(text.encode("utf-16-le")) // 2


def conversation_group(conversation_id: Any) -> str:
    return f"conversation_{conversation_id}"


def generation_group(conversation_id: Any) -> str:
    return f"generation_{conversation_id}"


def watch(conversation_id: Any, watcher: Watcher) -> None:
    get_hub().watchers.setdefault(str(conversation_id), set()).add(watcher)
    layer = get_channel_layer()
    if hasattr(layer, "on_lost"):
        layer.on_lost(_layer_lost)


async def _layer_lost() -> None:
    for watchers in list(get_hub().watchers.values()):
        for watcher in list(watchers):
            await watcher.layer_lost()


def unwatch(conversation_id: Any, watcher: Watcher) -> None:
    all_watchers = get_hub().watchers
    watchers = all_watchers.get(str(conversation_id))
    if watchers is not None:
        watchers.discard(watcher)
        if not watchers:
            del all_watchers[str(conversation_id)]


async def leave(group: str, channel: str) -> None:
    """`group_discard`, where an unreachable layer is no error (its groups are gone anyway)."""
    try:
        await get_channel_layer().group_discard(group, channel)
    except LAYER_FAILURES as exc:
        raise_if_cancelled(exc)
        logger.warning("Leaving %s failed: %s", group, exc)


async def deliver_local(conversation_id: Any, payload: dict[str, Any]) -> None:
    """The event to this process's sockets on the conversation."""
    for watcher in list(get_hub().watchers.get(str(conversation_id), ())):
        try:
            await watcher.deliver(payload)
        except Exception:  # a broken socket must not stop the answer
            logger.exception("Dropping a socket of conversation %s", conversation_id)
            unwatch(conversation_id, watcher)


def _layer_message(payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": EVENT_TYPE, "event": payload, "origin": get_hub().origin}


def _reaches_other_processes(layer: Any) -> bool:
    """The in-memory layer reaches only this process, whose sockets have the event already
    (and its group sends scan every channel of the process)."""
    return not isinstance(layer, InMemoryChannelLayer)


async def publish(conversation_id: Any, payload: dict[str, Any]) -> None:
    """The event to every socket on the conversation: here, then in other processes."""
    await deliver_local(conversation_id, payload)
    layer = get_channel_layer()
    if _reaches_other_processes(layer):
        try:
            await layer.group_send(conversation_group(conversation_id), _layer_message(payload))
        except LAYER_FAILURES as exc:  # best effort: a restarted layer reconnects the pages
            raise_if_cancelled(exc)
            logger.warning("Publishing to %s failed: %s", conversation_group(conversation_id), exc)


def runs_here(conversation_id: Any) -> bool:
    """Whether this process runs the conversation's answer (its text is live here)."""
    return str(conversation_id) in get_hub().answers


async def request_stop(conversation_id: Any) -> None:
    """Ask the process that runs the conversation's answer to stop it."""
    await get_channel_layer().group_send(generation_group(conversation_id), {"type": STOP_TYPE})


async def request_sync(*, conversation_id: Any, reply_channel: str) -> None:
    """Ask another process's running answer to resend its text to one socket (after a DB
    snapshot, which may lag the live text by one save interval, or when an answer starts
    there); its tokens follow."""
    if runs_here(conversation_id):
        return
    await get_channel_layer().group_send(
        generation_group(conversation_id), {"type": SYNC_TYPE, "reply_channel": reply_channel}
    )


class RemoteQueue:
    """A running answer's events for other processes, sent in order by one task."""

    def __init__(self, conversation_id: Any) -> None:
        self.group = conversation_group(conversation_id)
        self.wants_tokens = False  # a socket elsewhere asked for the text so far
        self._items: deque[tuple[str | None, dict[str, Any]]] = deque()  # (reply channel, event)
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._send_all())

    def put(self, payload: dict[str, Any]) -> None:
        """An event for the group; a token only once another process wants them."""
        if payload["type"] == "token":
            if not self.wants_tokens:
                return
            last = self._items[-1] if self._items else None
            if last is not None and last[0] is None and last[1]["type"] == "token":
                # NOTE: queued tokens are contiguous, so the merged one keeps the first offset.
                self._items[-1] = (None, {**last[1], "token": last[1]["token"] + payload["token"]})
                return
        self._queue(None, payload)

    def put_reply(self, reply_channel: str, payload: dict[str, Any]) -> None:
        """The text so far for one socket elsewhere; the tokens after it follow in order."""
        self.wants_tokens = True
        self._queue(reply_channel, payload)

    def _queue(self, reply_channel: str | None, payload: dict[str, Any]) -> None:
        self._items.append((reply_channel, payload))
        self._drained.clear()
        self._wakeup.set()

    async def _send_all(self) -> None:
        layer = get_channel_layer()
        to_group = _reaches_other_processes(layer)
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._items:
                reply_channel, payload = self._items.popleft()  # `put` merges only into later ones
                try:
                    if reply_channel is None:
                        if to_group:
                            await layer.group_send(self.group, _layer_message(payload))
                    else:
                        await layer.send(reply_channel, {"type": EVENT_TYPE, "event": payload})
                except LAYER_FAILURES as exc:
                    raise_if_cancelled(exc)
                    logger.warning("Sending an event to %s failed: %s", self.group, exc)
                except Exception:
                    logger.exception("Sending an event to %s failed", self.group)
            self._drained.set()

    async def close(self) -> None:
        """Sends what is queued, then stops."""
        if self._task is None:
            return
        if not self._task.done():
            await self._drained.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class TokenBatcher:
    """One answer's tokens as `token` events, each at once or, when `batch` says so, those of
    one `tick_s` together."""

    def __init__(
        self,
        emit: Callable[[dict[str, Any]], Awaitable[None]],
        message_id: str,
        tick_s: float,
    ) -> None:
        self._emit = emit
        self._message_id = message_id
        self._tick_s = tick_s
        self._text = ""  # tokens not sent yet
        self._offset = 0  # of the first of them
        self._timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()  # tokens leave in order, from the stream or the timer

    async def add(self, token: str, offset: int, *, batch: bool) -> None:
        if not self._text and not batch:
            async with self._lock:
                await self._send(token, offset)
            return
        if not self._text:
            self._offset = offset
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._tick_s, lambda: loop.create_task(self.flush()))
        self._text += token

    async def flush(self) -> None:
        """Sends the tokens that wait (before the answer's `final`, and at each tick)."""
        async with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._text:
                text, self._text = self._text, ""
                await self._send(text, self._offset)

    async def _send(self, token: str, offset: int) -> None:
        payload = {
            "type": "token",
            "message_id": self._message_id,
            "token": token,
            "offset": offset,
        }
        await self._emit(payload)
