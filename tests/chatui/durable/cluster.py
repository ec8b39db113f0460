"""Real web processes for the durable-streaming tests: a scratch Postgres database, daphne
processes sharing it and Redis, and visitors that talk to them like a browser does (a session
cookie from `GET /`, the JSON API with its CSRF token, websockets with an Origin header).

Imports nothing from `chatui`: the app runs in the child processes only.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql
from websockets.asyncio.client import ClientConnection, connect

from bench.processes import free_port, web_argv
from tests.support.server_process import ServerProcess

SETTINGS_MODULE = "tests.chatui.durable.web_settings"
EVENT_TIMEOUT_S = 20.0


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def scratch_database(server_url: str, prefix: str = "chatui_durable") -> Iterator[str]:
    """A new, empty database on the server of `server_url` (its URL), dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def web_env(*, database_url: str, redis_url: str, models: list[dict[str, Any]], **extra: str):
    """The environment of every web process of one cluster (and of its migrate step)."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "durable-tests-only",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "MODELS": json.dumps(models),
            "LLM_SUMMARIZATION": "false",
            "DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


class WebProcess(ServerProcess):
    """One web process as production runs it (`bench.processes.web_argv`: daphne on uvloop)."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        super().__init__(
            web_argv(self.port),
            env,
            f"{self.url}/api/models",
            log_path=log_dir / f"{name}.log",
            name=name,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start on `port` without waiting; a restart may have been given a fresh port."""
        self.argv = web_argv(self.port)
        self.ready_url = f"{self.url}/api/models"
        return super().start()


class ChatSocket:
    """A websocket on one conversation; `snapshot` is the first event's conversation."""

    def __init__(self, connection: ClientConnection, snapshot: dict[str, Any]) -> None:
        self.connection = connection
        self.snapshot = snapshot

    async def send(self, payload: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(payload))

    async def receive(self, timeout: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))

    async def until(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        """Events up to and including the first of `event_type` whose fields equal `match`."""
        events = []
        while True:
            event = await self.receive()
            events.append(event)
            if event["type"] == event_type and all(event.get(k) == v for k, v in match.items()):
                return events

    async def close(self) -> None:
        await self.connection.close()


class Visitor:
    """An anonymous visitor with one session, valid on every process of the cluster."""

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(timeout=EVENT_TIMEOUT_S)

    async def open(self, server: WebProcess) -> Visitor:
        """`GET /`: the CSRF cookie, as a browser gets it (the session starts with the
        visitor's first write)."""
        response = await self.http.get(server.url + "/")
        assert response.status_code == 200, response.text
        assert self.http.cookies.get("csrftoken"), "GET / gave no CSRF cookie"
        return self

    def _headers(self, server: WebProcess) -> dict[str, str]:
        return {"X-CSRFToken": self.http.cookies.get("csrftoken", ""), "Origin": server.url}

    async def new_conversation(self, server: WebProcess) -> str:
        response = await self.http.post(
            server.url + "/api/conversations", json={}, headers=self._headers(server)
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def conversation(self, server: WebProcess, conversation_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{server.url}/api/conversations/{conversation_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def sidebar(self, server: WebProcess) -> list[dict[str, Any]]:
        response = await self.http.get(server.url + "/api/conversations")
        assert response.status_code == 200, response.text
        return response.json()["conversations"]

    async def socket(self, server: WebProcess, conversation_id: str) -> ChatSocket:
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)
        connection = await connect(
            f"ws://127.0.0.1:{server.port}/ws/conversations/{conversation_id}/",
            origin=server.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookies},
            compression=None,
            proxy=None,
            open_timeout=EVENT_TIMEOUT_S,
        )
        first = json.loads(await asyncio.wait_for(connection.recv(), EVENT_TIMEOUT_S))
        assert first["type"] == "snapshot", first
        return ChatSocket(connection, first["conversation"])

    async def close(self) -> None:
        await self.http.aclose()


def apply_tokens(content: str, events: list[dict[str, Any]], message_id: str) -> str:
    """The page's text after `events`, by the protocol's offset rule (docs/chat-protocol.md).

    Offsets count UTF-16 code units; these tests stream ASCII, where they equal `len`. Fails
    on a token the rule cannot place (an offset beyond the text: a hole).
    """
    for event in events:
        if event["type"] != "token" or event["message_id"] != message_id:
            continue
        offset, token = event["offset"], event["token"]
        if offset + len(token) <= len(content):
            continue  # already shown
        assert offset <= len(content), f"a hole: offset {offset} after {len(content)} chars"
        content = content[:offset] + token
    return content


def stored_answer(database_url: str, message_id: str) -> dict[str, Any]:
    """The message row as the database holds it (not as any process reports it)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT content, is_generating, interrupted, error FROM chatui_message WHERE id = %s",
            (message_id,),
        ).fetchone()
    assert row is not None, f"message {message_id} is not stored"
    return dict(zip(("content", "is_generating", "interrupted", "error"), row, strict=True))
