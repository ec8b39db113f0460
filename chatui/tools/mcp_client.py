"""Talking to one MCP server through the official `mcp` SDK: list its tools, call one.

Each operation opens its own session (an HTTP session, or a stdio server process started for
it) and closes it, so nothing is held between answers, and a cancelled call (Stop) closes the
connection or ends the process. A user's server gets an HTTP client whose every request,
redirects included, passes the SSRF rule (`chatui.net_guard.request_guard`); the SDK itself
follows only redirects within the server's origin.

Must not import Django.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from chatui.net_guard import request_guard
from chatui.tools.mcp_servers import McpServer

CONNECT_TIMEOUT_S = 10.0
SSE_READ_TIMEOUT_S = 300.0
# The largest message read from a server (the SDK's default is 1 MiB): a bigger result is read
# and then cut (`chatui.tools.calls`); past this it fails with a readable error.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class RemoteTool:
    """A tool a server lists: its own name, description and JSON Schema of arguments."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class RemoteResult:
    """A call's outcome as text for the model; `is_error` when the tool said it failed."""

    text: str
    is_error: bool


def _http_client(server: McpServer, *, allow_private: bool, **kwargs: Any) -> httpx2.AsyncClient:
    hooks: dict[str, list[Any]] = {}
    if server.is_user:
        hooks["request"] = [request_guard(allow_private=allow_private)]
    timeout = kwargs.pop("timeout", None) or httpx2.Timeout(
        CONNECT_TIMEOUT_S, read=SSE_READ_TIMEOUT_S
    )
    headers = {**dict(server.headers), **(kwargs.pop("headers", None) or {})}
    return httpx2.AsyncClient(headers=headers, timeout=timeout, event_hooks=hooks, **kwargs)


@asynccontextmanager
async def mcp_session(server: McpServer, *, allow_private: bool = False) -> AsyncIterator[Client]:
    """A connected SDK client for `server` (closed, or its process ended, on exit)."""
    if server.transport == "stdio":
        env = {"PATH": os.environ.get("PATH", ""), **dict(server.env)}
        params = StdioServerParameters(command=server.command, args=list(server.args), env=env)
        async with Client(params, mode="legacy") as client:
            yield client
        return
    if server.transport == "sse":

        def factory(**kwargs: Any) -> httpx2.AsyncClient:
            return _http_client(server, allow_private=allow_private, **kwargs)

        transport = sse_client(server.url, httpx_client_factory=factory)
        async with Client(transport, mode="legacy") as client:
            yield client
        return
    http = _http_client(server, allow_private=allow_private)
    async with http:
        transport = streamable_http_client(
            server.url, http_client=http, max_sse_event_size=MAX_MESSAGE_BYTES
        )
        async with Client(transport, mode="legacy") as client:
            yield client


async def mcp_list_tools(server: McpServer, *, allow_private: bool = False) -> list[RemoteTool]:
    """Every tool the server lists (all pages)."""
    tools: list[RemoteTool] = []
    async with mcp_session(server, allow_private=allow_private) as client:
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
                tools.append(
                    RemoteTool(server.name, tool.name, tool.description or "", dict(schema))
                )
            cursor = page.next_cursor
            if not cursor:
                return tools


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", "")
    if kind == "text":
        return block.text
    if kind == "image":
        size = len(base64.b64decode(block.data, validate=False)) if block.data else 0
        return f"[an image, {block.mime_type}, {size} bytes]"
    if kind == "resource":
        resource = block.resource
        return getattr(resource, "text", None) or f"[a resource: {resource.uri}]"
    if kind == "resource_link":
        return f"[a link: {block.uri}]"
    return f"[{kind or 'unknown'} content]"


async def mcp_call_tool(
    server: McpServer, name: str, arguments: dict[str, Any], *, allow_private: bool = False
) -> RemoteResult:
    """Call `name` on `server`; its content blocks joined as text (structured content when
    there is no text)."""
    async with mcp_session(server, allow_private=allow_private) as client:
        result = await client.call_tool(name, arguments)
    text = "\n".join(_block_text(block) for block in result.content)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    return RemoteResult(text, bool(result.is_error))


def root_cause(error: BaseException) -> BaseException:
    """The first leaf of the SDK's exception groups (its task groups wrap every failure)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error
