"""A real server on a real socket, in a background thread, for the inference tests."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from bench.processes import free_port

STARTUP_DEADLINE_S = 120.0


@dataclass
class LiveServer:
    """uvicorn serving `app` on 127.0.0.1:`port` from a daemon thread."""

    app: Any
    port: int
    server: uvicorn.Server
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        return self.app.state.server

    @property
    def engine(self) -> Any:
        return self.state.engine

    def wait_until_ready(self, deadline_s: float = STARTUP_DEADLINE_S) -> None:
        """Poll `/health` until 200 (the model may still be loading)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.url} did not become healthy")

    def run(self, coroutine: Any, timeout: float = 60.0) -> Any:
        """Run `coroutine` on the server's event loop (where the engine's asyncio side lives)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(app: Any) -> LiveServer:
    """Bind a free port and serve `app`; returns once the socket accepts connections."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())

    thread = threading.Thread(target=serve, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return LiveServer(app=app, port=port, server=server, thread=thread, loop=loop)
