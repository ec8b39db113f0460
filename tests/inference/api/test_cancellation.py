"""Requests that end early: the client hangs up, or the engine fails mid-answer."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from inference.api.errors import GENERATION_FAILED
from inference.engine.async_engine import ENGINE_SHUT_DOWN
from tests.inference.api.conftest import LONG_ANSWER, serve, tiny_engine

LONG = {"max_new_tokens": LONG_ANSWER}
CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": LONG_ANSWER}


def wait_for(predicate, deadline_s: float = 30.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", {"inputs": "Hello", "parameters": LONG}),
        ("/", {"inputs": "Hello", "parameters": LONG}),
        ("/v1/chat/completions", CHAT),
        ("/v1/completions", {"prompt": "Hello", "max_tokens": LONG_ANSWER}),
    ],
)
def test_a_client_that_gives_up_on_a_plain_request_cancels_it(server, path, body):
    successes = server.state.metrics.request_success._value.get()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + path, json=body, timeout=httpx.Timeout(10, read=0.3))
    assert wait_for(lambda: server.state.limiter.in_flight == 0)
    assert wait_for(lambda: server.engine.num_running == 0 and server.engine.num_waiting == 0)
    assert server.state.metrics.request_success._value.get() == successes


def test_engine_failure_mid_answer_reaches_every_kind_of_client():
    """TGI event, OpenAI chunk error then [DONE], and a 424 for the plain request."""
    live = serve(tiny_engine())
    try:
        client = httpx.Client(timeout=120)

        def open_stream(path: str, body: dict) -> httpx.Response:
            request = client.build_request("POST", live.url + path, json=body)
            return client.send(request, stream=True)

        tgi = open_stream("/generate_stream", {"inputs": "Hi", "parameters": LONG})
        chat = open_stream("/v1/chat/completions", {**CHAT, "stream": True})
        tgi_lines, chat_lines = tgi.iter_lines(), chat.iter_lines()
        assert next(line for line in tgi_lines if line.startswith("data:"))
        assert next(line for line in chat_lines if line.startswith("data:"))
        plain: dict = {}

        def post_plain() -> None:
            body = {"inputs": "Hi", "parameters": LONG}
            plain["response"] = httpx.post(live.url + "/generate", json=body, timeout=120)

        thread = threading.Thread(target=post_plain)
        thread.start()
        assert wait_for(lambda: live.state.limiter.in_flight == 3)
        live.run(live.engine.shutdown())
        thread.join(60)

        failed = GENERATION_FAILED.format(ENGINE_SHUT_DOWN)
        tgi_events = [json.loads(line[5:]) for line in tgi_lines if line.startswith("data:")]
        assert tgi_events[-1] == {"error": failed, "error_type": "generation"}
        chat_data = [line[len("data: ") :] for line in chat_lines if line.startswith("data:")]
        assert chat_data[-1] == "[DONE]"
        assert json.loads(chat_data[-2]) == {"error": {"message": failed, "http_status_code": 424}}
        response = plain["response"]
        assert response.status_code == 424
        assert response.json() == {"error": failed, "error_type": "generation"}
        assert wait_for(lambda: live.state.limiter.in_flight == 0)
        metrics = httpx.get(live.url + "/metrics").text
        assert 'tgi_request_failure{err="generation"} 3.0' in metrics
        tgi.close()
        chat.close()
        client.close()
    finally:
        live.stop()
