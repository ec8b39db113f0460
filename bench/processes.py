"""Helpers for starting the project's own servers as real processes on loopback.

Shared by the benchmarks and by the tests that run real servers (browser, scale-out, live
inference), so a port, a migration or a venv path is found one way everywhere. Must not import
Django, `chatui` or `inference`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_argv(port: int, *extra: str) -> list[str]:
    """The web process as production runs it (`python -m config.serve`: daphne on uvloop) on
    127.0.0.1:`port`; `extra` daphne options go before the application."""
    serve = [str(VENV_BIN / "python"), "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port)]
    return [*serve, *extra, "config.asgi:application"]


def migrate(env: Mapping[str, str]) -> None:
    """`manage.py migrate` with `env` (its DATABASE_URL picks the database); raises on failure."""
    done = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput"],
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")
