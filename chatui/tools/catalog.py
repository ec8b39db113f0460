"""Which tools exist and which a user is offered: the built-ins and every tool of the
configured MCP servers (and of the user's own), under names unique across them, minus what
the user turned off.

Server tool lists are discovered at start-up (`ToolCatalog.discover`) and refreshed when
older than `refresh_s`; a server that fails to list is left out until the next try (after
`retry_s`), never failing an answer.

Must not import Django or the websocket layer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chatui.tools.builtins import tool_list
from chatui.tools.mcp_client import RemoteTool, mcp_list_tools
from chatui.tools.mcp_servers import McpServer

logger = logging.getLogger(__name__)

BUILTIN = "builtin"  # the `source` of Python-registered tools
LIST_TIMEOUT_S = 30.0  # a stdio server starts a Python process: slow on a busy machine
RETRY_S = 30.0
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class OfferedTool:
    """One tool as a model sees it (`name`, unique) and where it runs (`source`: "builtin"
    or a server's name; `remote_name`: the server's own name for it)."""

    name: str
    description: str
    parameters: dict[str, Any]
    source: str
    remote_name: str

    def spec(self) -> dict[str, Any]:
        """OpenAI's `tools` entry."""
        parameters = self.parameters or {"type": "object", "properties": {}}
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    @property
    def key(self) -> str:
        """How a user's settings name it: `source/remote_name`."""
        return f"{self.source}/{self.remote_name}"


@dataclass
class _Listing:
    tools: list[RemoteTool] = field(default_factory=list)
    fetched_at: float = float("-inf")
    ok: bool = False


def _unique(name: str, source: str, taken: set[str]) -> str:
    candidate = _NOT_NAME.sub("_", name)[:64] or "tool"
    if candidate in taken:
        candidate = _NOT_NAME.sub("_", f"{source}_{name}")[:64]
    base, number = candidate, 2
    while candidate in taken:
        candidate, number = f"{base[:60]}_{number}", number + 1
    taken.add(candidate)
    return candidate


class ToolCatalog:
    """The process's view of every tool; one per process (tests make their own)."""

    def __init__(
        self,
        servers: Iterable[McpServer] = (),
        *,
        refresh_s: float = 300.0,
        allow_private: bool = False,
        with_builtins: bool = True,
    ) -> None:
        self.servers = tuple(servers)
        self.refresh_s = refresh_s
        self.allow_private = allow_private
        self.with_builtins = with_builtins
        self._listings: dict[tuple[str, str, str], _Listing] = {}
        # NOTE: an asyncio lock belongs to one event loop (tests and sync views make several).
        self._locks: dict[tuple[int, str, str, str], asyncio.Lock] = {}
        self._discovery: asyncio.Task[None] | None = None

    def server(self, name: str, extra: Iterable[McpServer] = ()) -> McpServer | None:
        """The configured (or user's) server called `name`."""
        return next((s for s in (*self.servers, *extra) if s.name == name), None)

    async def listing(self, server: McpServer, *, force: bool = False) -> list[RemoteTool]:
        """The server's tools, from the cache while fresh; [] while it cannot be listed."""
        # Headers too: two users' servers at one address may hold different keys.
        key = (server.name, server.url or server.command, repr(sorted(server.headers.items())))
        listing = self._listings.setdefault(key, _Listing())
        age = time.monotonic() - listing.fetched_at
        if not force and age < (self.refresh_s if listing.ok else RETRY_S):
            return listing.tools
        lock_key = (id(asyncio.get_running_loop()), *key)
        async with self._locks.setdefault(lock_key, asyncio.Lock()):
            if not force and time.monotonic() - listing.fetched_at < age:
                return listing.tools  # refreshed while this waited
            try:
                async with asyncio.timeout(LIST_TIMEOUT_S):
                    tools = await mcp_list_tools(server, allow_private=self.allow_private)
                listing.tools, listing.ok = tools, True
            except Exception as exc:  # a server that fails is skipped, never the answer
                logger.warning("Listing the tools of MCP server %s failed: %r", server.name, exc)
                listing.ok = False
            listing.fetched_at = time.monotonic()
        return listing.tools

    async def discover(self) -> None:
        """List every configured server's tools now (at start-up), all at once."""
        await asyncio.gather(*(self.listing(s, force=True) for s in self.servers))

    def discover_soon(self) -> None:
        """Start `discover` in the background, once (the process's first socket), so the
        first answer with tools need not wait for the servers."""
        if self._discovery is None and self.servers:
            self._discovery = asyncio.get_running_loop().create_task(self.discover())

    async def offered(
        self, *, user_servers: Iterable[McpServer] = (), disabled: Iterable[str] = ()
    ) -> list[OfferedTool]:
        """The tools a user is offered: built-ins first, then each server's, with the servers
        (`"server:<name>"`) and tools (`"<source>/<name>"`) in `disabled` left out."""
        off = set(disabled)
        servers = [s for s in (*self.servers, *user_servers) if f"server:{s.name}" not in off]
        listings = await asyncio.gather(*(self.listing(s) for s in servers))
        taken: set[str] = set()
        offered: list[OfferedTool] = []
        if self.with_builtins and f"server:{BUILTIN}" not in off:
            for tool in tool_list():
                name = _unique(tool.name, BUILTIN, taken)
                offered.append(
                    OfferedTool(name, tool.description, tool.parameters, BUILTIN, tool.name)
                )
        for server, tools in zip(servers, listings, strict=True):
            for remote in tools:
                name = _unique(remote.name, server.name, taken)
                offered.append(
                    OfferedTool(
                        name, remote.description, remote.input_schema, server.name, remote.name
                    )
                )
        return [t for t in offered if t.key not in off]
