"""The server's native memory kept bounded, and where its memory is.

`bound_native_caches` (at start) caps oneDNN's and ideep's caches, `PeriodicTrim` (after
steps) returns glibc's free heap pages; see docs/inference-server.md, "Memory". The memory
report (`GET /debug/memory`, only with `INFERENCE_MEMORY_DEBUG=1`) reads the resident size,
glibc's heap (`mallinfo2`) and Python's growth (tracemalloc). Standard library only: must not
import torch, the engine or the web framework.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
import tracemalloc
from typing import Any

logger = logging.getLogger(__name__)

MB = 2**20
# oneDNN keeps every primitive it made (a JIT-compiled kernel and its descriptors, a few hundred
# kB for a bf16 inner product) in an LRU of 1024 by default, one per projection and row count.
# The projections run 32 row counts (inference.model.row_buckets): 256 holds all of them for a
# fused Llama-family layer's 4 projections (7 unfused), SmolLM2 bf16: about 40 MB in all.
NATIVE_CACHE_CAPACITY = 256
NATIVE_CACHE_ENVS = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
TRIM_INTERVAL_S = 30.0  # between two `malloc_trim` calls of a busy engine
TRACEMALLOC_FRAMES = 8
TOP_GROWTH = 10


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def bound_native_caches(capacity: int = NATIVE_CACHE_CAPACITY) -> dict[str, str]:
    """Cap oneDNN's primitive cache and ideep's computation cache at `capacity` entries unless
    the environment already sets them; returns the values in effect.

    NOTE: both libraries read their variable once, at their first primitive: call this before
    the model is loaded.
    """
    for name in NATIVE_CACHE_ENVS:
        os.environ.setdefault(name, str(capacity))
    return {name: os.environ[name] for name in NATIVE_CACHE_ENVS}


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_stats() -> dict[str, float] | None:
    """glibc's heap in MB: `arena` (from the OS, all arenas), `in_use`, `free` (held, not in
    use), `mmapped` (large blocks mapped alone), `top_free` (trimmable); None without glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {
        "arena_mb": info.arena / MB,
        "in_use_mb": info.uordblks / MB,
        "free_mb": info.fordblks / MB,
        "mmapped_mb": info.hblkhd / MB,
        "mmapped_blocks": float(info.hblks),
        "top_free_mb": info.keepcost / MB,
    }


def resident_mb() -> float:
    """This process's resident set (Linux `/proc/self/statm`; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


class PythonObjects:
    """tracemalloc, started with the report: the top growth since the first snapshot."""

    def __init__(self, frames: int = TRACEMALLOC_FRAMES) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(frames)
        self._baseline = tracemalloc.take_snapshot()

    def report(self, top: int = TOP_GROWTH) -> dict[str, Any]:
        """Traced Python memory now, and the lines whose allocations grew most since start."""
        snapshot = tracemalloc.take_snapshot()
        current, peak = tracemalloc.get_traced_memory()
        stats = snapshot.compare_to(self._baseline, "lineno")
        return {
            "traced_mb": current / MB,
            "peak_mb": peak / MB,
            "top_growth": [
                {
                    "where": str(stat.traceback[0]),
                    "size_diff_kb": stat.size_diff / 1024,
                    "count_diff": stat.count_diff,
                }
                for stat in stats[:top]
            ],
        }


class PeriodicTrim:
    """Returns the heap's free pages to the OS at most once per `interval_s`, called after
    each step: steps of new sizes free blocks in the middle of the heap that glibc keeps
    resident (only the top is trimmed on its own); one `malloc_trim` costs a few ms."""

    def __init__(self, interval_s: float = TRIM_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.num_trims = 0
        self.last_duration_s = 0.0
        self._last = time.monotonic()

    def after_step(self, now: float | None = None) -> bool:
        """Trim if `interval_s` passed since the last trim (or start); True when it did."""
        now = time.monotonic() if now is None else now
        if now - self._last < self.interval_s:
            return False
        self._last = now
        started = time.perf_counter()
        trimmed = trim()
        self.last_duration_s = time.perf_counter() - started
        self.num_trims += trimmed
        return trimmed


def trim() -> bool:
    """`malloc_trim(0)`: return free heap pages to the OS; False without glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    libc.malloc_trim(0)
    return True
