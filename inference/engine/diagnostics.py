"""The engine's part of the memory report: the size and limit of everything it keeps between
steps, and the torch/oneDNN settings that decide how much native memory a new step shape costs.

Read from the event loop while the engine thread steps: each figure is one `len()` (atomic
under the GIL), so a report may mix two steps but never fails. Must not import the web
framework.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from inference.engine import grammar, sampler
from inference.engine.engine import Engine
from inference.model import row_buckets

ONEDNN_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"  # `python -m inference` sets it (memory)
ONEDNN_DEFAULT_CAPACITY = 1024  # oneDNN's own default where the variable is unset
IDEEP_CACHE_ENV = "LRU_CACHE_CAPACITY"  # ideep's cache of prepared computations
IDEEP_DEFAULT_CAPACITY = 1024


def _entry(size: int, limit: int | None) -> dict[str, int | None]:
    return {"size": size, "limit": limit}


def cache_sizes(core: Engine, in_flight: dict[str, int]) -> dict[str, dict[str, int | None]]:
    """Every container the engine keeps across requests, with its bound (None: bounded by the
    requests in flight, released when each ends); `in_flight`: the async bridge's own maps."""
    blocks = core.scheduler.block_manager
    config = core.config
    return {
        "grammar_cache": _entry(core.grammars.num_cached, core.grammars.cache_size),
        "llguidance_tokenizers": _entry(len(grammar._LLTOKENIZERS), grammar.LLTOKENIZER_CACHE_SIZE),
        "sampler_bit_shifts": _entry(len(sampler._BIT_SHIFTS), None),
        "engine_requests": _entry(len(core.states), config.max_concurrent_requests),
        "detokenizers": _entry(len(core.states), config.max_concurrent_requests),
        "scheduler_waiting": _entry(core.scheduler.num_waiting, None),
        "scheduler_running": _entry(core.scheduler.num_running, config.max_batch_size),
        **{name: _entry(size, None) for name, size in in_flight.items()},
        "prefix_cache_hashes": _entry(blocks.num_cached_blocks, blocks.num_blocks),
        "prefix_cache_parents": _entry(len(blocks._children), blocks.num_blocks),
        "free_blocks": _entry(blocks.num_free_blocks, blocks.num_blocks),
        "runner_caches": _entry(len(getattr(core.runner, "caches", ())), None),
        "step_shapes": _entry(len(core.step_shapes), core.step_shapes_limit),
        # what oneDNN sees of them: the projections' padded row counts (inference.model.row_buckets)
        "onednn_row_shapes": _entry(len(_row_shapes(core.step_shapes)), len(row_buckets.ladder())),
    }


def _row_shapes(step_shapes: set[int]) -> set[int]:
    return set().union(*(row_buckets.shapes_of(rows) for rows in list(step_shapes)))


def _capacity(env: str, default: int) -> int:
    try:
        return int(os.environ.get(env, "") or default)
    except ValueError:
        return default


def torch_counters() -> dict[str, Any]:
    """The native caches' limits as this process set them, and torch's thread count."""
    return {
        "num_threads": torch.get_num_threads(),
        "mkldnn_enabled": bool(torch.backends.mkldnn.is_available()),
        "onednn_primitive_cache_capacity": _capacity(ONEDNN_CACHE_ENV, ONEDNN_DEFAULT_CAPACITY),
        "ideep_lru_cache_capacity": _capacity(IDEEP_CACHE_ENV, IDEEP_DEFAULT_CAPACITY),
    }
