"""A conversation page as `static/chatui/socket.js` and `chat.js` run it, for fault tests: a
socket that reconnects whenever the server closes it (except 4403), and each message's text
kept from snapshots and tokens by the protocol's offset rule (a hole fails the test).

Imports nothing from `chatui`: the app runs in other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.chatui.durable.cluster import ChatSocket, Visitor, WebProcess, apply_tokens

RECONNECT_DELAY_S = 0.5  # socket.js's first retry
FINAL_TIMEOUT_S = 40.0


class Page:
    """One open conversation on one web process."""

    def __init__(self, visitor: Visitor, server: WebProcess, conversation_id: str) -> None:
        self.visitor = visitor
        self.server = server
        self.conversation_id = conversation_id
        self.socket: ChatSocket | None = None
        self.texts: dict[str, str] = {}  # message id -> the text snapshots and tokens built
        self.messages: dict[str, dict[str, Any]] = {}  # as the last snapshot or event had them
        self.close_codes: list[int | None] = []

    async def open(self, deadline: float | None = None) -> Page:
        """Connects (again), retrying while the server refuses, and reads the snapshot."""
        deadline = deadline or time.monotonic() + FINAL_TIMEOUT_S
        while True:
            try:
                self.socket = await self.visitor.socket(self.server, self.conversation_id)
                break
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                self.close_codes.append(getattr(getattr(exc, "rcvd", None), "code", None))
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(RECONNECT_DELAY_S)
        for message in self.socket.snapshot["messages"]:
            self.messages[message["id"]] = message
            self.texts[message["id"]] = message["content"]
        return self

    async def send(self, payload: dict[str, Any]) -> None:
        assert self.socket is not None
        await self.socket.send(payload)

    async def final(self, message_id: str) -> dict[str, Any]:
        """The message once it is no longer generating, reconnecting as often as needed."""
        deadline = time.monotonic() + FINAL_TIMEOUT_S
        while True:
            known = self.messages.get(message_id)
            if known is not None and not known["is_generating"]:
                return known
            assert time.monotonic() < deadline, f"no final for {message_id}: {known}"
            try:
                assert self.socket is not None
                event = await self.socket.receive(timeout=max(0.1, deadline - time.monotonic()))
            except (ConnectionClosed, OSError) as exc:
                self.close_codes.append(getattr(getattr(exc, "rcvd", None), "code", None))
                await asyncio.sleep(RECONNECT_DELAY_S)
                await self.open(deadline)
                continue
            self.apply(event)

    def apply(self, event: dict[str, Any]) -> None:
        """One event, as chat.js applies it."""
        kind = event["type"]
        if kind == "message":
            self.messages[event["message"]["id"]] = event["message"]
            self.texts[event["message"]["id"]] = event["message"]["content"]
        elif kind == "final":  # `texts` keeps what the tokens built, for the tests to compare
            self.messages[event["message"]["id"]] = event["message"]
        elif kind == "token":
            known = self.texts.get(event["message_id"], "")
            self.texts[event["message_id"]] = apply_tokens(known, [event], event["message_id"])

    async def close(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(Exception):  # already closed by the server
                await self.socket.close()
