"""What a user and an operator see of the started stack: one chat answer streamed through the
web container's websocket, the same answer in the container Postgres, and the conversation
still there after `web` restarts."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx
import psycopg
import websockets

from scripts.compose_check.commands import CheckFailed, say

QUESTION = "What is the capital of France? Answer in one sentence."
ANSWER_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 300.0


@dataclass
class Chat:
    """A visitor's session and the conversation they had."""

    cookies: dict[str, str]
    conversation_id: str
    answer: str


def wait_ready(base_url: str) -> dict:
    """Poll the web app's /readyz until the database, Redis and the model server all answer."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=10)
            body = response.json()
            if response.status_code == 200:
                return body
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(2)
    raise CheckFailed(f"{base_url}/readyz never answered 200; last: {body}")


def _new_conversation(client: httpx.Client) -> str:
    """Open the page (for the CSRF cookie) and create a conversation, as the page does."""
    page = client.get("/")
    if page.status_code != 200:
        raise CheckFailed(f"GET / answered {page.status_code}")
    token = client.cookies.get("csrftoken", "")
    response = client.post("/api/conversations", json={}, headers={"X-CSRFToken": token})
    if response.status_code != 201:
        raise CheckFailed(
            f"POST /api/conversations answered {response.status_code}: {response.text}"
        )
    return response.json()["id"]


async def _ask(ws_url: str, origin: str, cookies: dict[str, str]) -> str:
    """Send the question over the websocket; return the final answer after tokens streamed."""
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    async with websockets.connect(
        ws_url, origin=origin, additional_headers={"Cookie": cookie}, open_timeout=30
    ) as socket:
        await socket.send(json.dumps({"type": "send", "content": QUESTION, "parent_id": None}))
        tokens = 0
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            async for frame in socket:
                event = json.loads(frame)
                if event["type"] == "token":
                    tokens += 1
                elif event["type"] == "error":
                    raise CheckFailed(f"the chat answered an error: {event['message']}")
                elif event["type"] == "final":
                    message = event["message"]
                    if message.get("error") or not message["content"].strip() or tokens == 0:
                        raise CheckFailed(f"no streamed answer: {tokens} token events, {message}")
                    say(f"{tokens} token events, answer: {message['content'][:80]!r}")
                    return message["content"]
    raise CheckFailed("the websocket closed before the answer's final event")


def chat_once(base_url: str) -> Chat:
    """One visitor asks one question through the web container."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        conversation_id = _new_conversation(client)
        cookies = dict(client.cookies.items())
    ws_url = base_url.replace("http://", "ws://") + f"/ws/conversations/{conversation_id}/"
    answer = asyncio.run(_ask(ws_url, base_url, cookies))
    return Chat(cookies=cookies, conversation_id=conversation_id, answer=answer)


def check_stored(database_url: str, chat: Chat) -> None:
    """The answer is a row of the container Postgres, byte for byte."""
    with psycopg.connect(database_url, connect_timeout=10) as connection:
        rows = connection.execute(
            "SELECT role, content FROM chatui_message WHERE conversation_id = %s "
            "ORDER BY created_at",
            (chat.conversation_id,),
        ).fetchall()
    if ("user", QUESTION) not in rows or ("assistant", chat.answer) not in rows:
        raise CheckFailed(f"Postgres holds {rows!r}, not the question and its answer")
    say(f"Postgres holds the conversation's {len(rows)} messages")


def check_still_there(base_url: str, chat: Chat) -> None:
    """After a restart of `web`, the same visitor reads the same conversation back."""
    with httpx.Client(base_url=base_url, cookies=chat.cookies, timeout=30) as client:
        response = client.get(f"/api/conversations/{chat.conversation_id}")
    if response.status_code != 200:
        raise CheckFailed(f"after the restart the conversation answered {response.status_code}")
    contents = [m["content"] for m in response.json()["messages"]]
    if chat.answer not in contents:
        raise CheckFailed(f"after the restart the answer is gone: {contents}")
    say("after the restart of web the conversation and its answer are still there")
