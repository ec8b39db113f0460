"""An MCP server of our own (the SDK's MCPServer, once called FastMCP) whose tools misbehave
on purpose: one fails, one is slow, one answers megabytes, one adds. Run over streamable HTTP:

    python -m tests.peers.faulty_mcp PORT
"""

from __future__ import annotations

import asyncio
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

HUGE_CHARS = 3_000_000
FAILURE = "the disk is on fire"

server = MCPServer("faulty")


@server.tool(description="Always fails")
def explode() -> str:
    raise ToolError(FAILURE)


@server.tool(description="Answers after `seconds`")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finally"


@server.tool(description="Answers three million characters")
def huge() -> str:
    return "x" * HUGE_CHARS


@server.tool(description="Adds two numbers")
def add(a: float, b: float) -> str:
    return f"{a + b:g}"


if __name__ == "__main__":
    server.run(
        "streamable-http", host="127.0.0.1", port=int(sys.argv[1]), max_request_body_size=1 << 20
    )
