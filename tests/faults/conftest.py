"""Fixtures for the fault tests: real processes (the model server on a tiny random model, web
processes on a scratch Postgres database, a private Redis, a proxy in front of Postgres), each
test free to kill or cut one of them mid-answer.

Every process is this test's own: a restarted Redis or a refused database never touches the
services other tests use.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.processes import migrate
from tests.chatui.durable.cluster import WebProcess, scratch_database, web_env
from tests.chatui.durable.conftest import service_urls  # noqa: F401  (fixture)
from tests.chatui.fake_endpoints import FakeTGI
from tests.faults.processes import InferenceProcess, RedisProcess, TcpProxy

pytestmark = pytest.mark.services

MODEL = "fault-model"


@pytest.fixture(scope="session")
def log_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="chatui-faults-"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random-weight Llama with the bundled tokenizer, saved as a model directory
    that `python -m inference --model-id` loads in a second."""
    from tests.support.tiny_model import build_tiny_llama

    directory = tmp_path_factory.mktemp("tiny-llama")
    loaded = build_tiny_llama(max_position_embeddings=4096)
    # No end-of-sequence token: random weights would otherwise end some answers at once.
    loaded.model.generation_config.eos_token_id = None
    loaded.model.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    return directory


def models_for(url: str, **parameters: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": MODEL,
            "name": MODEL,
            "chatPromptTemplate": "{{#each messages}}{{content}}\n{{/each}}",
            "parameters": {"max_new_tokens": 400, **parameters},
            "endpoints": [{"type": "tgi", "url": url}],
        }
    ]


@pytest.fixture(scope="session")
def model_server_session(tiny_model_dir: Path, log_dir: Path) -> Iterator[InferenceProcess]:
    server = InferenceProcess(tiny_model_dir, log_dir).start()
    yield server
    server.stop()


@pytest.fixture
def model_server(model_server_session: InferenceProcess) -> InferenceProcess:
    """The model server, idle; started again (same port) when an earlier test killed it."""
    if not model_server_session.is_alive:
        model_server_session.start()
    return model_server_session


@pytest.fixture
def database_url(service_urls: tuple[str, str]) -> Iterator[str]:  # noqa: F811
    with scratch_database(service_urls[0], prefix="chatui_faults") as url:
        yield url


@pytest.fixture
def redis(log_dir: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(log_dir).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_proxy(service_urls: tuple[str, str]) -> Iterator[TcpProxy]:  # noqa: F811
    parts = urlsplit(service_urls[0])
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.accept()
    yield proxy
    proxy.close()


@pytest.fixture
def fake_tgi() -> Iterator[FakeTGI]:
    with FakeTGI() as tgi:
        yield tgi


class WebProcesses:
    """Web processes started by a test, stopped after it (their logs shown on failure)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[WebProcess] = []

    def start(
        self, name: str, *, database_url: str, models: list[dict[str, Any]], redis_url: str = ""
    ) -> WebProcess:
        env = web_env(
            database_url=database_url,
            redis_url=redis_url,
            models=models,
            USAGE_LIMITS=json.dumps({}),
        )
        if not self.started:
            migrate(env)
        process = WebProcess(name, env, self.log_dir).start()
        self.started.append(process)
        return process.wait_ready()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()}" for p in self.started)

    def stop(self) -> None:
        for process in self.started:
            process.stop()


@pytest.fixture
def web(log_dir: Path) -> Iterator[WebProcesses]:
    processes = WebProcesses(log_dir)
    yield processes
    processes.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.when == "call" and report.failed:
        args = getattr(item, "funcargs", {})
        if isinstance(args.get("web"), WebProcesses):
            report.sections.append(("web process logs", args["web"].logs()))
        for name in ("model_server", "redis"):
            if hasattr(args.get(name), "log"):
                report.sections.append((f"{name} log", args[name].log()))
    return report
