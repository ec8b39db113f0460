"""Suite-wide rules. Per-area fixtures live in each test directory's own conftest.py.

In CI (`CI` set) the real Postgres and Redis named by DATABASE_URL / REDIS_URL must answer:
the run fails at once instead of skipping the tests that need them.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

# Nothing in the suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get("CI"):
        return
    missing = []
    for name, port in (("DATABASE_URL", 5432), ("REDIS_URL", 6379)):
        url = os.environ.get(name)
        if not url:
            missing.append(f"{name} is not set")
        elif not url.startswith("sqlite") and not _reachable(url, port):
            missing.append(f"{name}={url} does not answer")
    if missing:
        raise pytest.UsageError("CI needs its services: " + "; ".join(missing))
