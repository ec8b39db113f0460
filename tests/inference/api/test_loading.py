"""The port answers before the model is ready: 503 while loading, 200 once warmed up."""

from __future__ import annotations

import threading

import httpx
import pytest

from inference.api import create_app
from inference.api.errors import MODEL_LOAD_FAILED, MODEL_LOADING
from inference.config import ServerConfig
from inference.model.source import ModelNotFoundError
from tests.inference.api.conftest import LIMITS, tiny_engine
from tests.inference.live_server import start_server

LOADING = {"error": MODEL_LOADING, "error_type": "unhealthy"}


def test_503_while_loading_then_200():
    gate = threading.Event()

    def factory():
        gate.wait(120)
        return tiny_engine()

    live = start_server(create_app(None, ServerConfig(engine=LIMITS), engine_factory=factory))
    try:
        health = httpx.get(live.url + "/health")
        assert health.status_code == 503 and health.json() == LOADING
        for path, body in (
            ("/generate", {"inputs": "Hi"}),
            ("/generate_stream", {"inputs": "Hi"}),
            ("/", {"inputs": "Hi"}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
            ("/v1/completions", {"prompt": "Hi"}),
            ("/tokenize", {"inputs": "Hi"}),
        ):
            response = httpx.post(live.url + path, json=body)
            assert (response.status_code, response.json()) == (503, LOADING), path
        assert httpx.get(live.url + "/info").status_code == 200
        assert httpx.get(live.url + "/metrics").status_code == 200
        assert httpx.get(live.url + "/docs").status_code == 200

        gate.set()
        live.wait_until_ready()
        assert httpx.get(live.url + "/health").status_code == 200
        body = {"inputs": "Hi", "parameters": {"max_new_tokens": 2}}
        assert httpx.post(live.url + "/generate", json=body, timeout=60).status_code == 200
        assert httpx.get(live.url + "/info").json()["model_id"] == "tiny-random-llama"
    finally:
        gate.set()
        live.stop()


def test_a_model_that_cannot_load_is_reported_and_the_hook_runs():
    failures: list[BaseException] = []
    reported = threading.Event()

    def on_load_failure(exc: BaseException) -> None:
        failures.append(exc)
        reported.set()

    def factory():
        raise ModelNotFoundError("Could not load model 'nobody/nothing': not found")

    app = create_app(None, ServerConfig(), engine_factory=factory, on_load_failure=on_load_failure)
    live = start_server(app)
    try:
        assert reported.wait(60)
        assert isinstance(failures[0], ModelNotFoundError)
        health = httpx.get(live.url + "/health")
        assert health.status_code == 503
        detail = "Could not load model 'nobody/nothing': not found"
        assert health.json()["error"] == MODEL_LOAD_FAILED.format(detail)
    finally:
        live.stop()


def test_create_app_needs_an_engine_or_a_factory():
    with pytest.raises(ValueError):
        create_app(None)
