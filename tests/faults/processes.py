"""Real processes to break on purpose: the model server, a private Redis, and a TCP proxy in
front of Postgres that can refuse connections for a while.

Imports nothing from `chatui` or `inference`: each runs in its own process (or, for the proxy,
its own thread), so a fault here is what a deployment would see.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench.processes import VENV_BIN, free_port
from tests.support.server_process import ServerProcess

STARTUP_TIMEOUT_S = 120.0
REDIS_STARTUP_TIMEOUT_S = 20.0


class InferenceProcess(ServerProcess):
    """`python -m inference` on a model directory, always on the same port (a restart is the
    same endpoint to the chat app)."""

    def __init__(self, model_dir: Path, log_dir: Path, *extra: str) -> None:
        self.port = free_port()
        argv = [str(VENV_BIN / "python"), "-m", "inference", "--model-id", str(model_dir)]
        argv += ["--port", str(self.port), "--dtype", "float32", "--quantize", "none", *extra]
        log_path = log_dir / "inference.log"
        super().__init__(argv, None, f"{self.url}/health", log_path=log_path, name="model server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        return super().start().wait_ready(STARTUP_TIMEOUT_S)

    def gauge(self, name: str) -> float:
        """One Prometheus sample of `/metrics` (e.g. `tgi_batch_current_size`)."""
        text = httpx.get(self.url + "/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(f"{name} is not in /metrics")


class RedisProcess(ServerProcess):
    """A private `redis-server` that keeps nothing on disk: a restart loses everything, as the
    shared one in a container would."""

    def __init__(self, log_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: the fault tests need one")
        self.port = free_port()
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no"]  # fmt: skip
        super().__init__(
            argv, None, f"tcp://127.0.0.1:{self.port}", log_path=log_dir / "redis.log", name="redis"
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Self:
        return super().start().wait_ready(REDIS_STARTUP_TIMEOUT_S)


class TcpProxy:
    """127.0.0.1:`port` forwarded to `target`; `refuse()` drops every connection and refuses
    new ones (a database that went away), `accept()` brings it back on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="proxy")
        self._thread.start()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def accept(self) -> None:
        self._call(self._listen())

    def refuse(self) -> None:
        self._call(self._close())

    def close(self) -> None:
        self.refuse()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def url_for(self, database_url: str) -> str:
        """`database_url` with its host and port replaced by this proxy's."""
        parts = urlsplit(database_url)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{self.port}"))
