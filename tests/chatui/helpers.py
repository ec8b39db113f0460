"""Helpers for the chat backend tests: owners (anonymous sessions or users) with their
session cookies, their conversations, and websocket helpers (connect, start an answer, read
events, merge tokens like a page)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from chatui import services
from chatui.identity import ANON_SESSION_KEY, Identity
from chatui.models import Message
from tests.chatui.fake_endpoints import Script

MODEL_A = "model-a"
MODEL_B = "model-b"
ORIGIN = b"http://testserver"
TIMEOUT = 20

db = database_sync_to_async


@dataclass
class Owner:
    """Someone using the app: an anonymous session or a logged-in user."""

    identity: Identity
    cookie: str  # the session id
    user: Any = None

    def client(self) -> Client:
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = self.cookie
        return client

    def headers(self, origin: bytes = ORIGIN) -> list[tuple[bytes, bytes]]:
        cookie = f"{settings.SESSION_COOKIE_NAME}={self.cookie}".encode()
        return [(b"origin", origin), (b"cookie", cookie), (b"host", b"testserver")]


def make_owner(username: str | None = None) -> Owner:
    """Sync: a session for an anonymous visitor (with its key) or for a new user."""
    if username is None:
        session = SessionStore()
        key = secrets.token_urlsafe(16)
        session[ANON_SESSION_KEY] = key
        session.create()
        return Owner(Identity(anon_key=key), session.session_key)
    user = get_user_model().objects.create_user(username, password="pw-123456")
    client = Client()
    client.force_login(user)
    return Owner(
        Identity(user_id=user.pk), client.cookies[settings.SESSION_COOKIE_NAME].value, user
    )


def new_conversation(owner: Owner, model: str = MODEL_A) -> str:
    """Sync: a new conversation of `owner`'s, by id."""
    return str(services.conversation_create(identity=owner.identity, model=model).pk)


async def setup_owner(username: str | None = None) -> tuple[Owner, str]:
    """An owner and a new conversation of theirs."""
    owner = await db(make_owner)(username)
    conversation_id = await db(new_conversation)(owner)
    return owner, conversation_id


def messages_of(conversation_id: str) -> list[Message]:
    """Sync: the conversation's messages, oldest first."""
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("created_at"))


async def send_and_finish(
    socket: WebsocketCommunicator, content: str, parent_id: Any = None, **extra: Any
) -> list[dict[str, Any]]:
    """Sends a message and reads the events up to its answer's `final`."""
    await socket.send_json_to({"type": "send", "content": content, "parent_id": parent_id, **extra})
    return await receive_until(socket, "final")


async def start_answer(
    endpoints: Any, content: str, tokens: Sequence[str], *, delay: float
) -> tuple[Owner, str, WebsocketCommunicator]:
    """A new owner's conversation with an answer under way: the fake TGI (`endpoints.tgi`) will
    send `tokens` `delay` seconds apart, and `content` is sent on an open socket."""
    endpoints.tgi.queue(Script(tokens=tokens, delay=delay))
    owner, conversation_id = await setup_owner()
    socket = await connect(owner, conversation_id)
    await socket.send_json_to({"type": "send", "content": content, "parent_id": None})
    return owner, conversation_id, socket


async def connect(owner: Owner, conversation_id: Any, **kwargs: Any) -> WebsocketCommunicator:
    """An open socket on the conversation, its snapshot already read (in `.snapshot`)."""
    from config.asgi import application

    communicator = WebsocketCommunicator(
        application, f"/ws/conversations/{conversation_id}/", headers=owner.headers(**kwargs)
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    first = await communicator.receive_json_from(timeout=TIMEOUT)
    assert first["type"] == "snapshot", first
    communicator.snapshot = first["conversation"]  # type: ignore[attr-defined]
    return communicator


async def receive_until(
    communicator: WebsocketCommunicator, event_type: str, **match: Any
) -> list[dict[str, Any]]:
    """Events up to and including the first of `event_type` (whose fields equal `match`)."""
    events = []
    while True:
        event = await communicator.receive_json_from(timeout=TIMEOUT)
        events.append(event)
        if event["type"] == event_type and all(event.get(k) == v for k, v in match.items()):
            return events


async def title_event(
    communicator: WebsocketCommunicator, seen: list[dict[str, Any]]
) -> dict[str, Any]:
    """The conversation's `title` event: among `seen` (it is generated alongside the answer, so
    it may come before the answer's end), else the next one to arrive."""
    found = [event for event in seen if event["type"] == "title"]
    return found[0] if found else (await receive_until(communicator, "title"))[-1]


def merge_tokens(content: str, events: list[dict[str, Any]], message_id: str) -> str:
    """What a page shows: the snapshot's text with each token applied at its offset
    (Python str offsets equal UTF-16 offsets for the ASCII/BMP text these tests use)."""
    for event in events:
        if event["type"] != "token" or event["message_id"] != message_id:
            continue
        offset, token = event["offset"], event["token"]
        if offset <= len(content) < offset + len(token):
            content = content[:offset] + token
    return content


async def wait_idle(conversation_id: Any) -> None:
    """Until this process runs no generation for the conversation (title included)."""
    from chatui.streaming.hub import get_hub

    running = get_hub().answers.get(str(conversation_id))
    if running is not None and running.task is not None:
        await asyncio.wait_for(asyncio.shield(running.task), TIMEOUT)
