"""Everything one web process holds between requests, in one object made by
`ChatuiConfig.ready()`: the answers it runs, the sockets open on conversations, the pooled
clients for model servers, the reapers, the endpoints' health marks and chat templates, and
the id that tags the events it sends to other processes. Tests reset it with `Hub.reset`.

The bottom of the streaming package: must not import the other streaming modules (they import
it), consumers or views. What it needs of them, the running answer and the socket, are the
small protocols `RunningAnswer` and `Watcher` declared here.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from django.apps import apps
from django.conf import settings

from chatui.endpoints import DEFAULT_TIMEOUT, EndpointState


class RunningAnswer(Protocol):
    """What the hub's readers use of a running answer (`chatui.streaming.answer.Answer`)."""

    message_id: str
    text: str  # the text so far (newer than the database's between batched saves)
    task: asyncio.Task[None] | None

    def request_stop(self) -> None: ...


class Watcher(Protocol):
    """A socket of this process (`chatui.streaming.socket.ConversationSocket`)."""

    async def deliver(self, payload: dict[str, Any]) -> None: ...

    async def layer_lost(self) -> None:
        """Events from other processes may be lost: make the page read everything again."""
        ...


@dataclass
class Hub:
    """This process's running answers and open sockets (see the module docstring)."""

    origin: str = field(default_factory=lambda: uuid.uuid4().hex)
    endpoints: EndpointState = field(default_factory=EndpointState)
    # The running answers, by conversation id (one at a time per conversation).
    answers: dict[str, RunningAnswer] = field(default_factory=dict)
    # Message ids of this process's answers until their final save lands (never reaped here).
    unsaved: set[str] = field(default_factory=set)
    # Sockets of this process, by the conversation id they watch.
    watchers: dict[str, set[Watcher]] = field(default_factory=dict)
    reapers: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def reset(self) -> None:
        """Forget everything (tests; running tasks are the caller's to stop first)."""
        self.endpoints.reset()
        self.answers.clear()
        self.unsaved.clear()
        self.watchers.clear()

    def client(self) -> httpx.AsyncClient:
        """This event loop's pooled client for model servers. One per answer would cost tens of
        milliseconds of CPU each (its TLS context) and a new connection; a pool limit would
        queue answers, so there is none. `CHATUI_ENDPOINT_TIMEOUT_S` bounds the wait for each
        token (and so the time before an endpoint that hangs is given up for another)."""
        loop = asyncio.get_running_loop()
        client = self.clients.get(loop)
        if client is None or client.is_closed:
            read = getattr(settings, "CHATUI_ENDPOINT_TIMEOUT_S", None) or DEFAULT_TIMEOUT.read
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(read, connect=min(read, DEFAULT_TIMEOUT.connect)),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            )
            self.clients[loop] = client
        return client

    def stats(self) -> dict[str, Any]:
        """What `/admin/runtime.json` shows of it. Watchers are sockets, except the requests
        of the chat API for scripts listening to an answer (`is_socket = False`)."""
        watchers = [w for ws in self.watchers.values() for w in ws]
        sockets = sum(1 for w in watchers if getattr(w, "is_socket", True))
        return {
            "sockets": sockets,
            "api_listeners": len(watchers) - sockets,
            "generations": len(self.answers),
            "unsaved_answers": len(self.unsaved),
        }


def get_hub() -> Hub:
    """This process's hub."""
    return apps.get_app_config("chatui").hub
