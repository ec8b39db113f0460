"""Engine slots as a client sees them through `/metrics`: a stream the client drops frees its
slot and its KV cache blocks at once, and a full server refuses the next request at once (429),
never queues it."""

from __future__ import annotations

import time

import httpx
import pytest

from inference.api.errors import OVERLOADED
from tests.inference.api.conftest import LIMITS, LONG_ANSWER
from tests.inference.api.test_info import metric

LONG = {"inputs": "Hello", "parameters": {"max_new_tokens": LONG_ANSWER}}
FREED_WITHIN_S = 2.0  # the tiny model's step is a few milliseconds; this is generous
REFUSED_WITHIN_S = 1.0


def running(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    return metric(text, "tgi_batch_current_size") + metric(text, "tgi_queue_size")


def kv_blocks_used(url: str) -> float:
    return metric(httpx.get(url + "/metrics").text, "kv_cache_blocks_used")


def wait_for(predicate, deadline_s: float) -> float | None:
    """Seconds until `predicate()` held, or None if it never did within `deadline_s`."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def test_dropping_a_stream_frees_its_engine_slot_and_cache_blocks_at_once(url):
    assert metric(httpx.get(url + "/metrics").text, "kv_cache_blocks_total") > 0
    with httpx.Client(timeout=60) as client:
        request = client.build_request("POST", url + "/generate_stream", json=LONG)
        response = client.send(request, stream=True)
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        assert running(url) == 1  # still generating: 2000 tokens take seconds
        assert kv_blocks_used(url) >= 1
        response.close()
        freed_after = wait_for(
            lambda: running(url) == 0 and kv_blocks_used(url) == 0, FREED_WITHIN_S
        )
    assert freed_after is not None, "the dropped stream still holds its slot or cache blocks"
    assert "tgi_request_success" in httpx.get(url + "/metrics").text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", LONG),
        ("/generate_stream", LONG),
        ("/", LONG),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
        ("/v1/completions", {"prompt": "Hi"}),
        ("/invocations", LONG),
    ],
)
def test_a_full_server_answers_429_at_once(server, path, body):
    url = server.url
    before = httpx.get(url + "/metrics").text
    failures = 'tgi_request_failure{err="overloaded"}'
    overloaded = metric(before, failures) if failures in before else 0.0
    with httpx.Client(timeout=60) as client:
        streams = []
        try:
            for _ in range(LIMITS.max_concurrent_requests):
                request = client.build_request("POST", url + "/generate_stream", json=LONG)
                streams.append(client.send(request, stream=True))
            started = time.monotonic()
            refused = httpx.post(url + path, json=body, timeout=30)
            elapsed = time.monotonic() - started
        finally:
            for response in streams:
                response.close()
    assert refused.status_code == 429
    assert refused.json() == {"error": OVERLOADED, "error_type": "overloaded"}
    assert elapsed < REFUSED_WITHIN_S
    after = httpx.get(url + "/metrics").text
    assert metric(after, "tgi_request_failure", '{err="overloaded"}') == overloaded + 1
    assert wait_for(lambda: running(url) == 0, 30) is not None
