"""One server as a child process, for the tests and the benchmarks: start it with its output
in a log file, wait until it answers, stop it (SIGTERM, then SIGKILL if it lingers).

Imports nothing from `chatui` or `inference`: the server runs in the child only.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POLL_INTERVAL_S = 0.1
LOG_TAIL_CHARS = 5000


def answers(ready_url: str) -> bool:
    """`http(s)://...`: a GET answers 200; `tcp://host:port`: a connection is accepted."""
    parts = urlsplit(ready_url)
    if parts.scheme == "tcp":
        with (
            contextlib.suppress(OSError),
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1),
        ):
            return True
        return False
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(ready_url, timeout=2).status_code == 200
    return False


class ServerProcess:
    """`argv` run from the project root with `env` (None: this process's environment), its
    output appended to `log_path`; ready once `ready_url` answers (see `answers`)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None,
        ready_url: str,
        *,
        log_path: Path,
        name: str = "server",
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.ready_url = ready_url
        self.log_path = log_path
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start the process without waiting (start several, then `wait_ready` each)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> Self:
        """Until `ready_url` answers; RuntimeError if the process exits first, TimeoutError
        after `timeout_s` (both with the log's tail). A process given up on is stopped: a
        fixture that fails here never reaches its own cleanup."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_alive:
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            if answers(self.ready_url):
                return self
            time.sleep(POLL_INTERVAL_S)
        self.stop()
        raise TimeoutError(f"{self.name} did not answer in {timeout_s} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup runs, as when a machine or container dies."""
        if self.is_alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it is still running after `timeout_s`."""
        if self.is_alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start().wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
