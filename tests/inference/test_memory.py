"""`inference.memory`: glibc's heap figures, the allocator settings and the top growth."""

from __future__ import annotations

import sys
import time
import tracemalloc

import pytest

from inference import memory

glibc = pytest.mark.skipif(memory.heap_stats() is None, reason="needs glibc's mallinfo2")


def test_resident_size_is_read() -> None:
    if sys.platform == "linux":
        assert memory.resident_mb() > 10


@glibc
def test_heap_figures_add_up() -> None:
    heap = memory.heap_stats()
    assert heap is not None
    assert heap["arena_mb"] == pytest.approx(heap["in_use_mb"] + heap["free_mb"], rel=0.01)
    assert memory.trim()


def test_top_growth_names_the_line_that_allocated() -> None:
    was_tracing = tracemalloc.is_tracing()
    try:
        objects = memory.PythonObjects()
        kept = [bytearray(4096) for _ in range(256)]  # 1 MiB from this line
        report = objects.report()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    assert len(kept) == 256
    top = report["top_growth"][0]
    assert top["where"].startswith(__file__) and top["size_diff_kb"] >= 1024


def test_native_caches_are_capped_unless_the_environment_says(monkeypatch) -> None:
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "7")
    capped = memory.bound_native_caches(32)
    assert capped == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "32", "LRU_CACHE_CAPACITY": "7"}


def test_the_heap_is_trimmed_at_most_once_per_interval() -> None:
    trimmer = memory.PeriodicTrim(interval_s=30.0)
    start = time.monotonic()
    assert not trimmer.after_step(start + 1)
    expected = memory.heap_stats() is not None  # glibc: trimmed
    assert trimmer.after_step(start + 31) is expected
    assert not trimmer.after_step(start + 40)  # 9 s after the last
    assert trimmer.after_step(start + 62) is expected
    assert trimmer.num_trims == (2 if expected else 0)
