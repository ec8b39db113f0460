"""`GET /debug/memory`: where the server's memory is, for the soak and for an operator chasing
growth. Mounted only when `INFERENCE_MEMORY_DEBUG` is true (tracemalloc costs time on every
allocation), and behind `--api-key` like every route that is not open.

Must not import torch: the engine's part comes through `EngineClient.diagnostics()`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from inference import memory
from inference.api.routes.common import off_loop
from inference.api.state import get_state

MEMORY_PATH = "/debug/memory"

router = APIRouter(tags=["Diagnostics"])


def memory_report(request: Request) -> dict[str, Any]:
    """Resident size, glibc's heap, Python's top growth, and the sizes of every cache."""
    state = get_state(request)
    engine = state.engine
    objects = state.python_objects
    return {
        "time": time.time(),
        "rss_mb": memory.resident_mb(),
        "heap": memory.heap_stats(),
        "python": objects.report() if objects is not None else None,
        "engine": engine.diagnostics() if engine is not None and engine.is_ready else None,
        "metrics_series": state.metrics.num_series(),
    }


@router.get(MEMORY_PATH, include_in_schema=False)
async def memory_debug(request: Request) -> dict[str, Any]:
    # NOTE: a tracemalloc snapshot takes tens of milliseconds: not on the event loop.
    return await off_loop(memory_report, request)
