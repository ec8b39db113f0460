"""What one web process holds right now: its asyncio tasks, open conversation sockets, running
answers, channel-layer group memberships and database pool. Staff only, at
`/admin/runtime.json`: `bench.soak` reads it to show that nothing leaks, and an operator can
read it on a live server (each process answers for itself).

Reads in-memory state only (no query). Must not import consumers or views.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.admin.views.decorators import staff_member_required
from django.db import connections
from django.http import HttpRequest, JsonResponse

from chatui.streaming.hub import get_hub

NUM_TASK_KINDS = 10  # the most frequent coroutines, by name, in the answer


def _task_name(task: asyncio.Task[Any]) -> str:
    coroutine = task.get_coro()
    return getattr(coroutine, "__qualname__", type(coroutine).__name__)


def _database_pool() -> dict[str, int]:
    """The Postgres pool's size and idle connections ({} on SQLite, which has no pool)."""
    pool = getattr(connections["default"], "pool", None)
    if pool is None:
        return {}
    stats = pool.get_stats()
    size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
    return {"size": size, "idle": idle, "in_use": size - idle}


def runtime_stats() -> dict[str, Any]:
    """This process's counts (call it on the event loop)."""
    tasks = asyncio.all_tasks()
    layer = get_channel_layer()
    return {
        "pid": os.getpid(),
        "asyncio_tasks": len(tasks),
        "task_kinds": dict(Counter(map(_task_name, tasks)).most_common(NUM_TASK_KINDS)),
        **get_hub().stats(),
        "layer_memberships": len(getattr(layer, "memberships", ())),
        "layer_recoveries": getattr(layer, "num_recoveries", 0),
        # channels with messages or receivers here (those of gone sockets: until the expiry)
        "layer_buffers": getattr(layer, "num_buffers", 0),
        # the layer's reader tasks (one per process at most: popping, or blocked until the
        # next message after its last receiver left), counted among `asyncio_tasks` too
        "layer_readers": getattr(layer, "num_readers", 0),
        "database_pool": _database_pool(),
    }


@sync_to_async
def _release_connection() -> None:
    """This request's connection (the staff check's queries) back to the pool first, so that
    `database_pool.in_use` counts only the others."""
    connections["default"].close()


@staff_member_required
async def runtime_view(request: HttpRequest) -> JsonResponse:
    await _release_connection()
    return JsonResponse(runtime_stats())
