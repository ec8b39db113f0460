"""Fixtures for durable streaming and scale-out.

`cluster`: two daphne processes sharing Redis and a scratch Postgres database (created and
migrated once per run, dropped at the end), serving one model on a fake TGI server in this
process. The services come from DATABASE_URL / REDIS_URL; without them the tests fail in CI
(`CI` set) and otherwise fall back to the local servers, or skip when those do not answer.

`configure` and `models` serve the in-process tests (WebsocketCommunicator), which swap the
chat configuration per test.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.processes import free_port, migrate
from tests.chatui.durable.cluster import WebProcess, scratch_database, web_env
from tests.chatui.fake_endpoints import (  # noqa: F401  (fixtures)
    FakeOpenAI,
    FakeTGI,
    Script,
    fake_openai,
    fake_tgi,
)

LOCAL_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
CLUSTER_MODEL = "durable-model"
CLUSTER_LIMITS = {"concurrentGenerations": 1}


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _service_url(name: str, local: str, schemes: tuple[str, ...], port: int) -> str:
    """The service's URL; in CI a missing or silent service fails the test, else skips it."""
    in_ci = bool(os.environ.get("CI"))
    url = os.environ.get(name, "")
    if url and not url.startswith(schemes):
        if in_ci:
            pytest.fail(f"{name}={url} is not a {schemes[0]} URL: these tests need one")
        url = ""
    url = url or ("" if in_ci else local)
    if not url:
        pytest.fail(f"CI is set but {name} is not: the scale-out tests cannot run")
    if not _answers(url, port):
        message = f"{name}={url} does not answer"
        if in_ci:
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def service_urls() -> tuple[str, str]:
    """(Postgres URL, Redis URL)."""
    database = _service_url("DATABASE_URL", LOCAL_DATABASE_URL, ("postgres",), 5432)
    redis = _service_url("REDIS_URL", LOCAL_REDIS_URL, ("redis", "rediss"), 6379)
    return database, redis


@dataclass
class Cluster:
    """Two web processes (`a`, `b`) on one database and one Redis, one fake TGI behind."""

    a: WebProcess
    b: WebProcess
    tgi: FakeTGI
    database_url: str

    def ensure_running(self) -> None:
        """Restarts a process an earlier test killed (a fresh port each time)."""
        stopped = [p for p in (self.a, self.b) if not p.is_alive]
        for process in stopped:
            process.port = free_port()
            process.start()
        for process in stopped:
            process.wait_ready()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()}" for p in (self.a, self.b))


def cluster_models(url: str) -> list[dict[str, Any]]:
    return [
        {
            "id": CLUSTER_MODEL,
            "name": "org/durable-model",
            "parameters": {"max_new_tokens": 512, "stop": ["<|im_end|>"]},
            "endpoints": [{"type": "tgi", "url": url}],
        }
    ]


@pytest.fixture(scope="session")
def cluster_session(service_urls: tuple[str, str]) -> Iterator[Cluster]:
    database_server, redis_url = service_urls
    log_dir = Path(tempfile.mkdtemp(prefix="chatui-durable-"))
    with FakeTGI() as tgi, scratch_database(database_server) as database_url:
        env = web_env(
            database_url=database_url,
            redis_url=redis_url,
            models=cluster_models(tgi.url),
            USAGE_LIMITS=json.dumps(CLUSTER_LIMITS),
        )
        migrate(env)
        a, b = WebProcess("web-a", env, log_dir), WebProcess("web-b", env, log_dir)
        try:
            for process in (a.start(), b.start()):
                process.wait_ready()
            yield Cluster(a, b, tgi, database_url)
        finally:
            for process in (a, b):
                process.stop()


@pytest.fixture
def cluster(cluster_session: Cluster) -> Iterator[Cluster]:
    """Both processes up, the fake's scripts fresh; the processes' logs on failure."""
    cluster_session.ensure_running()
    tgi = cluster_session.tgi
    tgi.script = Script()
    with tgi._lock:  # NOTE: FakeTGI has no public way to drop queued scripts
        tgi._scripts.clear()
    tgi.requests.clear()
    tgi.disconnected.clear()
    yield cluster_session


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    found = getattr(item, "funcargs", {}).get("cluster")
    if report.when == "call" and report.failed and isinstance(found, Cluster):
        report.sections.append(("web process logs", found.logs()))
    return report


# --- in-process tests ------------------------------------------------------------------------


@pytest.fixture
def configure() -> Iterator[Callable[..., Any]]:
    """`configure(**env)` swaps the loaded chat configuration for the test."""
    from chatui.chat_config import get_chat_config, set_chat_config
    from chatui.models_config import load_app_config

    original = get_chat_config()

    def apply(**env: str) -> Any:
        config = load_app_config(env)
        set_chat_config(config)
        return config

    yield apply
    set_chat_config(original)


@pytest.fixture
def endpoint_health() -> Iterator[Any]:
    """The process's endpoint health record, clean before and after the test."""
    from chatui.streaming.hub import get_hub

    hub = get_hub()
    hub.endpoints.reset()
    yield hub.endpoints.health
    hub.endpoints.reset()
