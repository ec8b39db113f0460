"""MCP servers as child processes for the tests: `mcp-server-time` (PyPI) over stdio,
`@modelcontextprotocol/server-everything` (npm, installed under tests/peers/mcp by
`make test`) over streamable HTTP, and our own misbehaving `faulty_mcp` over streamable HTTP.

Imports nothing from `chatui`: these stand in for the far side.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server_process import PROJECT_ROOT, ServerProcess

TIME_SERVER = str(Path(sys.executable).with_name("mcp-server-time"))
EVERYTHING = PROJECT_ROOT / "tests/peers/mcp/node_modules/@modelcontextprotocol/server-everything"


def time_server_entry(name: str = "time") -> dict[str, object]:
    """`MCP_SERVERS`'s entry for the time server over stdio (its zone pinned to UTC)."""
    return {"name": name, "command": TIME_SERVER, "args": ["--local-timezone", "UTC"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def everything_server(log_dir: Path, transport: str = "streamableHttp") -> Iterator[str]:
    """server-everything over streamable HTTP (or `"sse"`); yields its `/mcp` (`/sse`) URL."""
    if not (EVERYTHING / "dist/index.js").exists():
        raise RuntimeError(f"{EVERYTHING} is missing: run `npm ci --prefix tests/peers/mcp`")
    port = free_port()
    argv = ["node", str(EVERYTHING / "dist/index.js"), transport]
    env = {**os.environ, "PORT": str(port)}
    with ServerProcess(
        argv, env, f"tcp://127.0.0.1:{port}", log_path=log_dir / f"{transport}.log", name=transport
    ) as process:
        process.wait_ready(30)
        yield f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"


@contextmanager
def faulty_server(log_dir: Path) -> Iterator[str]:
    """`tests.peers.faulty_mcp` over streamable HTTP; yields its `/mcp` URL."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.peers.faulty_mcp", str(port)]
    with ServerProcess(
        argv, None, f"tcp://127.0.0.1:{port}", log_path=log_dir / "faulty.log", name="faulty"
    ) as process:
        process.wait_ready(30)
        yield f"http://127.0.0.1:{port}/mcp"
