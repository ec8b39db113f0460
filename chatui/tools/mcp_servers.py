"""MCP servers as configured: chat-ui's `MCP_SERVERS` (`[{"name", "url", "headers"}]`, over
streamable HTTP, or SSE with `"transport": "sse"` or a URL ending in `/sse`) plus stdio
servers (`{"name", "command", "args", "env"}`) that the web process starts itself; and the
HTTP servers users add in their settings, which pass the SSRF rule (`chatui.net_guard`).

Reads no environment itself: the caller passes the raw value. Must not import Django.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Transport = Literal["streamable-http", "sse", "stdio"]

SERVERS_NOT_A_LIST = "MCP_SERVERS must be a JSON list of servers: {error}"
SERVER_INVALID = "MCP_SERVERS[{index}] ({name}): {error}"
SERVER_NAME_INVALID = "the name must be 1-64 letters, digits, spaces, '-', '_' or '.'"
SERVER_NAME_TAKEN = "the name {name!r} is used twice"
SERVER_NEEDS_URL_OR_COMMAND = "give either a url (HTTP) or a command (stdio)"
SERVER_BAD_URL = "the url must start with http:// or https://"
SERVER_BAD_MAP = "{key} must map names to strings"
SERVER_BAD_ARGS = "args must be a list of strings"
SERVER_BAD_TRANSPORT = "transport must be streamable-http or sse"

_NAME = re.compile(r"^[\w .-]{1,64}$")


class McpConfigError(ValueError):
    """A server entry that cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class McpServer:
    """One MCP server: HTTP (`url`, `headers`) or stdio (`command`, `args`, `env`)."""

    name: str
    transport: Transport
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    is_user: bool = False  # added by a user: every request passes the SSRF rule

    def to_public_dict(self) -> dict[str, Any]:
        """What a user's settings page shows: never headers, commands or environment (they may
        hold keys)."""
        return {
            "name": self.name,
            "transport": self.transport,
            "url": self.url if self.is_user else "",
            "is_user": self.is_user,
        }


def _string_map(entry: Mapping[str, Any], key: str) -> dict[str, str]:
    value = entry.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise McpConfigError(SERVER_BAD_MAP.format(key=key))
    return dict(value)


def server_from_entry(entry: Any, *, is_user: bool = False) -> McpServer:
    """One entry of `MCP_SERVERS` (or a user's server) as a `McpServer`; `McpConfigError`
    says what is wrong with it."""
    if not isinstance(entry, dict):
        raise McpConfigError("an entry must be an object")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise McpConfigError(SERVER_NAME_INVALID)
    url, command = entry.get("url"), entry.get("command")
    if is_user and command:
        raise McpConfigError(SERVER_BAD_URL)  # users may add HTTP servers only
    if bool(url) == bool(command):
        raise McpConfigError(SERVER_NEEDS_URL_OR_COMMAND)
    if command:
        if not isinstance(command, str):
            raise McpConfigError(SERVER_NEEDS_URL_OR_COMMAND)
        args = entry.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise McpConfigError(SERVER_BAD_ARGS)
        env = _string_map(entry, "env")
        return McpServer(name.strip(), "stdio", command=command, args=tuple(args), env=env)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise McpConfigError(SERVER_BAD_URL)
    transport = entry.get("transport") or ("sse" if url.rstrip("/").endswith("/sse") else None)
    if transport not in (None, "streamable-http", "sse"):
        raise McpConfigError(SERVER_BAD_TRANSPORT)
    return McpServer(
        name.strip(),
        transport or "streamable-http",
        url=url,
        headers=_string_map(entry, "headers"),
        is_user=is_user,
    )


def parse_mcp_servers(raw: str | None) -> tuple[McpServer, ...]:
    """`MCP_SERVERS` as servers (empty when unset); the first bad entry raises."""
    if not raw or not raw.strip():
        return ()
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise McpConfigError(SERVERS_NOT_A_LIST.format(error=exc)) from None
    if not isinstance(entries, list):
        raise McpConfigError(SERVERS_NOT_A_LIST.format(error="not a list"))
    servers: list[McpServer] = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        try:
            server = server_from_entry(entry)
        except McpConfigError as exc:
            raise McpConfigError(
                SERVER_INVALID.format(index=index, name=name or "?", error=exc)
            ) from None
        if any(s.name == server.name for s in servers):
            error = SERVER_NAME_TAKEN.format(name=server.name)
            raise McpConfigError(SERVER_INVALID.format(index=index, name=name, error=error))
        servers.append(server)
    return tuple(servers)


def user_servers(entries: Any) -> tuple[McpServer, ...]:
    """A user's stored servers (`chatui.services.tool_settings`), those still valid."""
    servers: list[McpServer] = []
    for entry in entries or ():
        try:
            servers.append(server_from_entry(entry, is_user=True))
        except McpConfigError:
            continue  # an entry stored under older rules: left out, not an error
    return tuple(servers)
