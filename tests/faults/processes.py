"""Real processes to break on purpose: the model server, a private Redis, and a TCP proxy in
front of Postgres that can refuse connections for a while.

Imports nothing from `chatui` or `inference`: each runs in its own process (or, for the proxy,
its own thread), so a fault here is what a deployment would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench.processes import PROJECT_ROOT, VENV_BIN, free_port

STARTUP_TIMEOUT_S = 120.0


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    """Until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), contextlib.closing(_connect(port)):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _connect(port: int):
    import socket

    return socket.create_connection(("127.0.0.1", port), 1)


class ManagedProcess:
    """One child process with its log file; `kill` is SIGKILL, as when a machine dies."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    @property
    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(), cwd=PROJECT_ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""


class InferenceProcess(ManagedProcess):
    """`python -m inference` on a model directory, always on the same port (a restart is the
    same endpoint to the chat app)."""

    def __init__(self, model_dir: Path, log_dir: Path, *extra: str) -> None:
        super().__init__("inference", log_dir)
        self.model_dir = model_dir
        self.port = free_port()
        self.extra = extra

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            str(VENV_BIN / "python"),
            "-m",
            "inference",
            "--model-id",
            str(self.model_dir),
            "--port",
            str(self.port),
            "--dtype",
            "float32",
            "--quantize",
            "none",
            *self.extra,
        ]

    def start(self) -> InferenceProcess:
        self.spawn()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.is_alive:
                raise RuntimeError(f"the model server exited:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"the model server did not start:\n{self.log()}")

    def gauge(self, name: str) -> float:
        """One Prometheus sample of `/metrics` (e.g. `tgi_batch_current_size`)."""
        text = httpx.get(self.url + "/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(f"{name} is not in /metrics")


class RedisProcess(ManagedProcess):
    """A private `redis-server` that keeps nothing on disk: a restart loses everything, as the
    shared one in a container would."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__("redis", log_dir)
        self.port = free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: the fault tests need one")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no"]  # fmt: skip

    def start(self) -> RedisProcess:
        self.spawn()
        wait_for_port(self.port)
        return self


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
