"""`GET /debug/memory`: mounted only with `INFERENCE_MEMORY_DEBUG`, behind `--api-key`, and
reporting the heap, Python's growth and every engine cache with its limit."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from inference.api import create_app
from inference.api.routes.debug import MEMORY_PATH
from inference.cli import MEMORY_DEBUG_ENV, parse_args
from inference.config import ServerConfig
from inference.engine.grammar import GRAMMAR_CACHE_SIZE
from tests.inference.api.conftest import LIMITS, tiny_engine
from tests.inference.live_server import LiveServer, start_server

KEY = "memory-report-key"


@pytest.fixture(scope="module")
def debug_server() -> Iterator[LiveServer]:
    was_tracing = tracemalloc.is_tracing()
    config = ServerConfig(engine=LIMITS, api_key=KEY, memory_debug=True)
    live = start_server(create_app(tiny_engine(), config))
    live.wait_until_ready()
    yield live
    live.stop()
    if not was_tracing:
        tracemalloc.stop()  # it slows every allocation of the tests that follow


def test_the_report_needs_the_flag(url) -> None:
    assert httpx.get(url + MEMORY_PATH, timeout=30).status_code == 404


def test_the_report_needs_the_key(debug_server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(debug_server.url + MEMORY_PATH, headers=headers, timeout=30)
        assert response.status_code == 401


def test_the_report_says_where_memory_is(debug_server) -> None:
    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 3}}
    headers = {"Authorization": f"Bearer {KEY}"}
    assert httpx.post(debug_server.url + "/generate", json=body, headers=headers, timeout=60)
    report = httpx.get(debug_server.url + MEMORY_PATH, headers=headers, timeout=30).json()
    assert report["rss_mb"] > 10
    heap = report["heap"]
    assert heap is None or heap["arena_mb"] >= heap["in_use_mb"] > 0
    assert report["python"]["traced_mb"] > 0
    assert all(
        {"where", "size_diff_kb", "count_diff"} <= set(g) for g in report["python"]["top_growth"]
    )
    caches = report["engine"]["caches"]
    assert caches["grammar_cache"] == {"size": 0, "limit": GRAMMAR_CACHE_SIZE}
    assert caches["engine_requests"] == {"size": 0, "limit": LIMITS.max_concurrent_requests}
    assert caches["subscribers"]["size"] == 0  # the request ended: nothing of it is kept
    assert caches["step_shapes"]["size"] >= 1
    assert 1 <= caches["onednn_row_shapes"]["size"] <= caches["onednn_row_shapes"]["limit"] == 32
    for name, entry in caches.items():
        assert entry["limit"] is None or entry["size"] <= entry["limit"], name
    torch_part = report["engine"]["torch"]
    assert torch_part["onednn_primitive_cache_capacity"] > 0
    assert report["metrics_series"] > 0


def test_the_flag_comes_from_the_environment() -> None:
    assert parse_args([], environ={MEMORY_DEBUG_ENV: "1"})[0].memory_debug is True
    assert parse_args([], environ={})[0].memory_debug is False
    with pytest.raises(SystemExit):
        parse_args([], environ={MEMORY_DEBUG_ENV: "maybe"})
