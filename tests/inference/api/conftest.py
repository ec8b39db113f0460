"""Fixtures for the HTTP layer: the real app over a tiny random-weight Llama on a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from inference.api import create_app
from inference.config import EngineConfig, ServerConfig
from inference.engine.async_engine import AsyncEngine
from tests.inference.live_server import LiveServer, start_server
from tests.support.tiny_model import build_tiny_llama

LIMITS = EngineConfig(
    max_concurrent_requests=4,
    max_best_of=2,
    max_stop_sequences=2,
    max_top_n_tokens=3,
    max_input_tokens=128,
    max_total_tokens=2048,
    max_batch_prefill_tokens=512,
    max_batch_total_tokens=16384,
    max_batch_size=8,
)
# NOTE: long enough that a 2000-token answer outlasts any hang-up or refusal a test stages
# (the tiny model makes a token in about 2 ms), so those tests do not race the model.
LONG_ANSWER = LIMITS.max_total_tokens - LIMITS.max_input_tokens


def tiny_engine(limits: EngineConfig = LIMITS) -> AsyncEngine:
    return AsyncEngine(build_tiny_llama(max_position_embeddings=limits.max_total_tokens), limits)


def serve(engine: AsyncEngine, limits: EngineConfig = LIMITS, **kwargs) -> LiveServer:
    app = create_app(engine, ServerConfig(engine=limits), **kwargs)
    server = start_server(app)
    server.wait_until_ready()
    return server


def stream_lines(url: str, path: str, body: dict) -> list[str]:
    """POST `body` and read the whole event stream: its frames, without the blank lines."""
    with httpx.stream("POST", url + path, json=body, timeout=120) as response:
        assert response.status_code == 200
        raw = response.read().decode()
    assert raw.endswith("\n\n")
    return raw[:-2].split("\n\n")


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    """The shared server (keep-alive at TGI's 15 s, so streams carry only data events)."""
    live = serve(tiny_engine())
    yield live
    live.stop()


@pytest.fixture(scope="session")
def url(server: LiveServer) -> str:
    return server.url


@pytest.fixture
def hub_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let huggingface_hub's clients talk to our local server, and to nothing else.

    The suite runs with HF_HUB_OFFLINE=1, which makes huggingface_hub refuse *every* request,
    even to 127.0.0.1; the Hub endpoint is pointed at a closed local port instead.
    """
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_TOKEN", raising=False)
