"""One answer's events, as a request of the API reads them: a `Watcher` of the conversation
(`chatui.streaming.publish.watch`) whose events land in a queue, read until the answer's
`status` says it is over, and the OpenAI shapes they become.

The answer is the page's own task (`chatui.streaming.answer`): the request only listens, so
a client that leaves does not stop it (the answer is stored, as when a tab closes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from chatui.api_v1.errors import ANSWER_FAILED
from chatui.streaming.publish import unwatch, watch

POLL_S = 1.0  # how often a quiet wait checks that the answer's task still runs
# chatui.endpoints' finish reasons (TGI's and OpenAI's) -> OpenAI's.
FINISH_REASONS = {"length": "length", "tool_calls": "tool_calls"}


@dataclass
class AnswerEnd:
    """How the answer ended: its stored text, finish reason, error and token counts."""

    content: str = ""
    finish_reason: str = "stop"
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass
class AnswerEvents:
    """The events of one conversation's answer for one request (a `Watcher`)."""

    conversation_id: str
    message_id: str = ""
    is_socket = False  # not a websocket: the hub counts it apart (`Hub.stats`)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    end: AnswerEnd = field(default_factory=AnswerEnd)

    def __hash__(self) -> int:  # a member of the hub's set of watchers
        return id(self)

    async def deliver(self, payload: dict[str, Any]) -> None:
        self.queue.put_nowait(payload)

    async def layer_lost(self) -> None:
        """Nothing to do: the answer runs in this process, whose events come directly."""

    def start(self) -> None:
        watch(self.conversation_id, self)

    def stop(self) -> None:
        unwatch(self.conversation_id, self)

    async def tokens(self, task: asyncio.Task[None] | None) -> AsyncIterator[str]:
        """The answer's text as it streams; `self.end` is set once this is exhausted."""
        try:
            while True:
                try:
                    payload = await asyncio.wait_for(self.queue.get(), POLL_S)
                except TimeoutError:
                    if task is not None and task.done() and self.queue.empty():
                        self.end.error = self.end.error or ANSWER_FAILED
                        return
                    continue
                if payload.get("message_id", self.message_id) != self.message_id:
                    continue
                kind = payload.get("type")
                if kind == "token":
                    yield payload["token"]
                elif kind == "final" and payload["message"]["id"] == self.message_id:
                    self._final(payload["message"])
                elif kind == "error":
                    self.end.error = payload.get("message") or ANSWER_FAILED
                elif kind == "status" and payload.get("status") in {"done", "stopped"}:
                    return
        finally:
            self.stop()

    def _final(self, message: dict[str, Any]) -> None:
        self.end.content = message["content"]
        self.end.finish_reason = FINISH_REASONS.get(message.get("finish_reason") or "", "stop")
        self.end.error = message.get("error") or self.end.error


def completion_id(message_id: str) -> str:
    return f"chatcmpl-{message_id.replace('-', '')}"


def chunk(
    *, message_id: str, model: str, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    """One `chat.completion.chunk` of a stream."""
    return {
        "id": completion_id(message_id),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def completion(
    *, message_id: str, model: str, conversation_id: str, end: AnswerEnd
) -> dict[str, Any]:
    """The whole `chat.completion` (not streamed); `conversation_id` is this API's own."""
    return {
        "id": completion_id(message_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": end.content},
                "finish_reason": end.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": end.usage(),
        "conversation_id": conversation_id,
    }
