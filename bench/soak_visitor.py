"""One simulated visitor of `bench.soak`: a browser session that opens its conversations on a
random web process each time and does what people do (ask, leave mid-answer and come back,
stop, regenerate, continue, edit, start a new chat) and what attackers do (the frames of
`bench.soak_hostile`). It records every message as it saw it (`Seen`), so that the database can
be compared with it at the end, and everything that went wrong (`problems`).

Must not import Django or `chatui`: the app runs in other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.chat_clients import create_conversation, open_socket
from bench.soak_hostile import CLOSE_TOO_BIG, HOSTILE, hostile_frame

ANSWER_TIMEOUT_S = 180.0  # an answer on a busy 2-core machine, queued behind others
CLOSE_RECONNECT = 4012  # the channel layer restarted: the page reconnects
EXPECTED_CLOSES = {1000, 1001, CLOSE_TOO_BIG, CLOSE_RECONNECT}
PROMPTS = (
    "What is a hash table?",
    "Write a haiku about the sea.",
    "Name three colours.",
    "How do I boil an egg?",
    "Explain recursion to a child.",
    "Translate 'good morning' into French.",
    "Give me a name for a cat.",
    "Why is the sky blue?",
    "Écris une phrase sur Paris. 🌧️",
    "List two prime numbers.",
)
# (action, weight): the mix of one visitor's steps
ACTIONS = (
    ("ask", 30),
    ("leave_mid_answer", 12),
    ("stop", 10),
    ("regenerate", 10),
    ("continue", 8),
    ("edit", 8),
    ("new_chat", 5),
    ("hostile", 17),
)


@dataclass
class Seen:
    """A message as a visitor last saw it."""

    conversation_id: str
    role: str
    parent_id: str | None
    content: str
    is_final: bool  # seen in a `final` event, or in a snapshot as no longer generating
    interrupted: bool = False
    finish_reason: str = ""


@dataclass
class Tally:
    """What one visitor did and what went wrong."""

    actions: Counter[str] = field(default_factory=Counter)
    answers: int = 0
    answer_errors: int = 0  # answers that ended with an error event (stored with it)
    refusals: int = 0  # hostile frames answered with an error event or 1009, as they must be
    reconnects: int = 0
    problems: list[str] = field(default_factory=list)


class Visitor:
    """A browser session on the soak's web processes (any of them, at random)."""

    def __init__(self, name: str, base_urls: list[str], seed: int) -> None:
        self.name = name
        self.base_urls = base_urls
        self.random = random.Random(seed)
        self.http = httpx.AsyncClient(timeout=60.0)
        self.seen: dict[str, Seen] = {}
        self.conversations: list[str] = []
        self.tally = Tally()
        self.socket: ClientConnection | None = None
        self.conversation_id = ""
        self.texts: dict[str, str] = {}  # message id -> the text the tokens built

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, until: float, think_s: float, max_answers: int) -> None:
        """Steps until the monotonic time `until`; each step finishes what it started. A
        conversation with `max_answers` answers is left for a new one (as people do), so the
        prompts stop growing after a while."""
        await self._new_chat()
        while time.monotonic() < until:
            action = self.random.choices(*zip(*ACTIONS, strict=True))[0]
            if self._num_answers() >= max_answers:
                action = "new_chat"
            try:
                await asyncio.wait_for(getattr(self, "_" + action)(), ANSWER_TIMEOUT_S)
                self.tally.actions[action] += 1
            except (TimeoutError, ConnectionClosed, OSError, httpx.HTTPError) as exc:
                self.problem(f"{action}: {type(exc).__name__}: {exc}")
                await self._drop_socket()
            await asyncio.sleep(self.random.uniform(0, 2 * think_s))
        await self._drop_socket()

    def problem(self, text: str) -> None:
        self.tally.problems.append(f"{self.name} in {self.conversation_id[:8]}: {text}")

    async def close(self) -> None:
        await self._drop_socket()
        await self.http.aclose()

    # -- the socket ----------------------------------------------------------------------------

    async def _connect(self) -> None:
        """A socket on the current conversation on a random process (its snapshot applied)."""
        await self._drop_socket()
        base_url = self.random.choice(self.base_urls)
        for _ in range(20):
            try:
                socket, first = await open_socket(self.http, base_url, self.conversation_id)
            except ConnectionClosed as exc:  # closed before its snapshot: the page retries
                self._closed(exc)
                await asyncio.sleep(0.5)
                continue
            if first.get("type") == "snapshot":
                self.socket = socket
                self._apply_snapshot(first["conversation"])
                return
            await socket.close()
            self.problem(f"a socket opened with {first.get('type')} instead of a snapshot")
        raise ConnectionError(f"no snapshot from {base_url}")

    async def _socket(self) -> ClientConnection:
        """The open socket, or a new one on another process half of the time (a tab opened
        elsewhere: sockets come and go all the time)."""
        if self.socket is None or self.random.random() < 0.5:
            await self._connect()
        assert self.socket is not None
        return self.socket

    async def _drop_socket(self, *, abort: bool = False) -> None:
        socket, self.socket = self.socket, None
        if socket is None:
            return
        if abort:  # the network went away: no close handshake
            socket.transport.abort()
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socket.close(), 10)

    async def _send(self, payload: dict[str, Any] | str | bytes) -> None:
        """Sends on the socket, or (as the page queues it) on a new one if the server closed
        this one meanwhile."""
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        socket = await self._socket()
        try:
            await socket.send(data)
        except ConnectionClosed as exc:
            self._closed(exc)
            await self._connect()
            assert self.socket is not None
            await self.socket.send(data)

    def _closed(self, exc: ConnectionClosed) -> int | None:
        """The close code, counted; a code the page would not expect is a problem."""
        code = exc.rcvd.code if exc.rcvd else None
        if code not in EXPECTED_CLOSES:
            self.problem(f"socket closed with {code}")
        self.tally.reconnects += 1
        return code

    async def _event(self) -> dict[str, Any]:
        """The next event, applied to what this visitor saw; a close the page would reconnect
        after reconnects (and reads the snapshot), any other close is a problem."""
        while True:
            assert self.socket is not None
            try:
                event = json.loads(await self.socket.recv())
            except ConnectionClosed as exc:
                code = self._closed(exc)
                await self._connect()
                return {"type": "reconnected", "code": code}
            self._apply(event)
            return event

    # -- what the visitor sees -----------------------------------------------------------------

    def _apply_snapshot(self, conversation: dict[str, Any]) -> None:
        for message in conversation["messages"]:
            self.texts[message["id"]] = message["content"]
            self._record(message, is_final=not message["is_generating"])

    def _record(self, message: dict[str, Any], *, is_final: bool) -> None:
        known = self.seen.get(message["id"])
        if known is not None and known.is_final and not is_final:
            return  # a continue restarts it: `_continue` clears this first
        self.seen[message["id"]] = Seen(
            conversation_id=self.conversation_id,
            role=message["role"],
            parent_id=message.get("parent_id"),
            content=message["content"],
            is_final=is_final or message["role"] != "assistant",
            interrupted=bool(message.get("interrupted")),
            finish_reason=message.get("finish_reason") or "",
        )

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message":
            self.texts[event["message"]["id"]] = event["message"]["content"]
            self._record(event["message"], is_final=not event["message"]["is_generating"])
        elif kind == "token":
            message_id, offset, token = event["message_id"], event["offset"], event["token"]
            text = self.texts.get(message_id, "")
            length = len(text.encode("utf-16-le")) // 2
            if offset > length:
                self.problem(f"a hole: token at {offset} after {length} code units")
            elif offset + len(token.encode("utf-16-le")) // 2 > length:
                self.texts[message_id] = _utf16_prefix(text, offset) + token
        elif kind == "final":
            message = event["message"]
            streamed = self.texts.get(message["id"], "")
            if not message["interrupted"] and message["content"].strip() != streamed.strip():
                self.problem(f"final differs from the stream: {message['content'][:40]!r}")
            self.texts[message["id"]] = message["content"]
            self._record(message, is_final=True)

    # -- actions -------------------------------------------------------------------------------

    async def _new_chat(self) -> None:
        base_url = self.random.choice(self.base_urls)
        self.conversation_id = await create_conversation(self.http, base_url)
        self.conversations.append(self.conversation_id)
        await self._connect()

    def _num_answers(self) -> int:
        return sum(
            1
            for seen in self.seen.values()
            if seen.conversation_id == self.conversation_id and seen.role == "assistant"
        )

    def _leaf(self, role: str | None = None) -> Seen | None:
        """The newest message of the current conversation (of `role`), as last seen."""
        mine = [
            (message_id, seen)
            for message_id, seen in self.seen.items()
            if seen.conversation_id == self.conversation_id and (role is None or seen.role == role)
        ]
        return mine[-1][1] if mine else None

    def _leaf_id(self, role: str | None = None) -> str | None:
        leaf = self._leaf(role)
        return next((k for k, v in self.seen.items() if v is leaf), None)

    async def _until_final(self, *, answer_id: str | None = None) -> dict[str, Any] | None:
        """Events until the `final` of `answer_id` (or of the first answer to start)."""
        while True:
            event = await self._event()
            kind = event["type"]
            if kind == "message" and answer_id is None and event["message"]["role"] == "assistant":
                answer_id = event["message"]["id"]
            elif kind == "reconnected" and answer_id is not None:
                seen = self.seen.get(answer_id)
                if seen is not None and seen.is_final:
                    return None  # it ended while the socket was away: the snapshot has it
            elif kind == "final" and event["message"]["id"] == answer_id:
                self.tally.answers += 1
                return event["message"]
            elif kind == "error" and event.get("message_id") is None:
                self.problem(f"refused: {event['message']}")
                return None
            elif kind == "error":
                self.tally.answer_errors += 1

    async def _ask_and_start(self, payload: dict[str, Any]) -> str | None:
        """Sends; the id of the answer it started (after its first token), None if refused."""
        await self._send(payload)
        answer_id = None
        while True:
            event = await self._event()
            kind = event["type"]
            if kind == "message" and event["message"]["role"] == "assistant":
                answer_id = event["message"]["id"]
            elif kind in ("token", "final") and answer_id is not None:
                if kind == "final":
                    self.tally.answers += 1
                return answer_id
            elif kind == "error" and event.get("message_id") is None:
                self.problem(f"refused: {event['message']}")
                return None

    async def _ask(self) -> None:
        await self._send(self._question(self._leaf_id("assistant")))
        await self._until_final()

    def _question(self, parent_id: str | None) -> dict[str, Any]:
        return {"type": "send", "content": self.random.choice(PROMPTS), "parent_id": parent_id}

    async def _leave_mid_answer(self) -> None:
        """Drops the socket after a few tokens (no close handshake), comes back a little later
        on a random process and reads the answer to its end."""
        answer_id = await self._ask_and_start(self._question(self._leaf_id("assistant")))
        if answer_id is None:
            return
        await self._drop_socket(abort=True)
        await asyncio.sleep(self.random.uniform(0, 3))
        await self._connect()
        seen = self.seen.get(answer_id)
        if seen is None or not seen.is_final:
            await self._until_final(answer_id=answer_id)

    async def _stop(self) -> None:
        answer_id = await self._ask_and_start(self._question(self._leaf_id("assistant")))
        if answer_id is None:
            return
        await self._send({"type": "stop"})
        seen = self.seen.get(answer_id)
        if seen is None or not seen.is_final:
            await self._until_final(answer_id=answer_id)

    async def _regenerate(self) -> None:
        answer_id = self._leaf_id("assistant")
        if answer_id is None:
            return await self._ask()
        await self._send({"type": "regenerate", "message_id": answer_id})
        await self._until_final()

    async def _continue(self) -> None:
        answer_id = self._leaf_id("assistant")
        seen = self.seen.get(answer_id) if answer_id else None
        if seen is None or seen.finish_reason != "length":
            return await self._ask()
        await self._send({"type": "continue", "message_id": answer_id})
        before = seen.content
        final = await self._until_final(answer_id=answer_id)
        if final is not None and not final["content"].startswith(before.rstrip()):
            self.problem("a continued answer lost its beginning")

    async def _edit(self) -> None:
        question_id = self._leaf_id("user")
        if question_id is None:
            return await self._ask()
        content = self.random.choice(PROMPTS) + " Briefly."
        await self._send({"type": "edit", "message_id": question_id, "content": content})
        await self._until_final()

    async def _hostile(self) -> None:
        kind = self.random.choice(HOSTILE)
        await self._send(hostile_frame(kind))
        while True:
            event = await self._event()
            if event["type"] == "error" and event.get("message_id") is None:
                self.tally.refusals += 1
                return
            if event["type"] == "reconnected":
                if kind == "too_big" and event["code"] == CLOSE_TOO_BIG:
                    self.tally.refusals += 1
                else:
                    self.problem(f"{kind}: closed with {event['code']} instead of an error")
                return
            if event["type"] == "message":
                self.problem(f"{kind}: the server stored it")
                return


def _utf16_prefix(text: str, length: int) -> str:
    """The first `length` UTF-16 code units of `text` (as JavaScript's `slice`)."""
    return text.encode("utf-16-le")[: 2 * length].decode("utf-16-le", "ignore")
