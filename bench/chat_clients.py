"""The load of `bench.chat`: visitors that each open their own conversation and ask one question
(and the session, conversation and socket helpers `bench.soak` shares).

A visitor gets its session like a browser (`GET /`), creates a conversation through the JSON API
(with the CSRF token), opens the conversation's websocket and waits; then every visitor sends at
once. For each token the fake endpoint stamped (`[<monotonic ns>]`, see `bench.chat_endpoint`)
the visitor records how long the app held it: the time the frame was read here minus the stamp.
Must not import Django or `chatui`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection, connect

STAMP = re.compile(r"\[(\d+)\]")
TIMEOUT_S = 60.0


@dataclass
class Outcome:
    """One visitor's answer: its tokens' added latencies (ns) and when it was sent / done."""

    latencies_ns: list[int] = field(default_factory=list)
    sent_at: float = 0.0
    done_at: float = 0.0
    num_tokens: int = 0
    error: str = ""


def csrf_headers(http: httpx.AsyncClient, base_url: str) -> dict[str, str]:
    """What the page sends with a write: the CSRF cookie's token and its own origin."""
    return {"X-CSRFToken": http.cookies.get("csrftoken", ""), "Origin": base_url}


async def create_conversation(http: httpx.AsyncClient, base_url: str) -> str:
    """`GET /` (the CSRF cookie) when the client has none yet, then a new conversation."""
    if not http.cookies.get("csrftoken"):
        (await http.get(base_url + "/")).raise_for_status()
    created = await http.post(
        base_url + "/api/conversations", json={}, headers=csrf_headers(http, base_url)
    )
    created.raise_for_status()
    return created.json()["id"]


async def open_socket(
    http: httpx.AsyncClient, base_url: str, conversation_id: str
) -> tuple[ClientConnection, dict]:
    """The conversation's websocket with the client's cookies, and its first event (the
    snapshot, or whatever the server sent instead)."""
    cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)
    ws_url = base_url.replace("http://", "ws://")
    socket = await connect(
        f"{ws_url}/ws/conversations/{conversation_id}/",
        origin=base_url,  # type: ignore[arg-type]
        additional_headers={"Cookie": cookies},
        compression=None,
        proxy=None,
        open_timeout=TIMEOUT_S,
        max_queue=None,
        max_size=None,
    )
    return socket, json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT_S))


class Visitor:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S)
        self.socket: ClientConnection | None = None
        self.outcome = Outcome()

    async def prepare(self) -> None:
        """Session, conversation, open websocket (its snapshot read)."""
        conversation_id = await create_conversation(self.http, self.base_url)
        self.socket, snapshot = await open_socket(self.http, self.base_url, conversation_id)
        assert snapshot["type"] == "snapshot", snapshot

    async def ask(self, start: asyncio.Event) -> Outcome:
        """Sends one message when `start` is set; reads until its `final`."""
        assert self.socket is not None
        outcome = self.outcome
        await start.wait()
        outcome.sent_at = time.monotonic()
        try:
            await self.socket.send(json.dumps({"type": "send", "content": "Hi", "parent_id": None}))
            await asyncio.wait_for(self._read(outcome), TIMEOUT_S)
        except Exception as exc:  # reported in the table, never raised
            outcome.error = f"{type(exc).__name__}: {exc}"
        return outcome

    async def _read(self, outcome: Outcome) -> None:
        assert self.socket is not None
        while True:
            frame = await self.socket.recv()
            now = time.monotonic_ns()
            event = json.loads(frame)
            kind = event["type"]
            if kind == "token":
                stamps = STAMP.findall(event["token"])
                outcome.latencies_ns.extend(now - int(stamp) for stamp in stamps)
                outcome.num_tokens += len(stamps)
            elif kind == "final":
                outcome.done_at = time.monotonic()
                if event["message"].get("error"):
                    outcome.error = event["message"]["error"]
                return
            elif kind == "error":
                outcome.error = event["message"]
                return

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        await self.http.aclose()


async def run_visitors(base_urls: list[str], num_clients: int) -> list[Outcome]:
    """`num_clients` visitors spread round-robin over `base_urls`, all asking at once."""
    visitors = [Visitor(base_urls[i % len(base_urls)]) for i in range(num_clients)]
    gate = asyncio.Semaphore(16)

    async def prepare(visitor: Visitor) -> None:
        async with gate:
            await visitor.prepare()

    await asyncio.gather(*(prepare(v) for v in visitors))
    start = asyncio.Event()
    asking = [asyncio.create_task(v.ask(start)) for v in visitors]
    await asyncio.sleep(0.5)  # every visitor is waiting on `start`; the servers are idle
    start.set()
    outcomes = await asyncio.gather(*asking)
    await asyncio.gather(*(v.close() for v in visitors), return_exceptions=True)
    return list(outcomes)
