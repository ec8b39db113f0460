"""Compiled CPU kernels, built once per machine with its C++ compiler (cached by torch).

``paged_decode_attention`` reads each sequence's KV blocks where they lie, where the
portable path first gathers them into a padded copy and runs SDPA with a length mask: on
this project's CPUs a batch-32 decode layer takes about a third of the time. Where no
compiler is available (or ``INFERENCE_KERNELS=0``), ``available()`` is False and the model
keeps the portable path, so nothing depends on the build succeeding.
Must not import the engine, the scheduler or Django.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("paged_decode.cpp")
HEAD_DIMS = (16, 64, 128)  # compiled head sizes (16: the tests' tiny model)
MAX_GROUP = 8  # query heads per KV head, compiled 1..8
CFLAGS = ["-O3", "-march=native", "-ffast-math", "-fno-finite-math-only", "-fopenmp"]


@functools.cache
def available() -> bool:
    """Build (first time) and load the kernels; False, with the reason logged, if impossible."""
    if os.environ.get("INFERENCE_KERNELS", "1") == "0":
        return False
    # torch's builder runs `ninja` from PATH: the virtualenv's copy lives beside python.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if shutil.which("ninja") is None or shutil.which(os.environ.get("CXX", "c++")) is None:
        logger.info("No C++ toolchain (c++ and ninja): using the portable attention path")
        return False
    try:
        from torch.utils import cpp_extension

        started = time.perf_counter()
        cpp_extension.load(
            name="inference_kernels",
            sources=[str(SOURCE)],
            extra_cflags=CFLAGS,
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
            verbose=False,
        )
    except Exception as exc:  # a failed build must never stop the server
        logger.warning("Could not build the CPU kernels (%s): using the portable path", exc)
        return False
    logger.info("CPU kernels ready in %.1f s", time.perf_counter() - started)
    return True


def supports(device: torch.device, dtype: torch.dtype, head_dim: int, group: int) -> bool:
    """True when ``paged_decode_attention`` runs this model's decode (and the build works)."""
    return (
        device.type == "cpu"
        and dtype in (torch.float32, torch.bfloat16)
        and head_dim in HEAD_DIMS
        and 1 <= group <= MAX_GROUP
        and available()
    )


def paged_decode_attention(
    q: torch.Tensor,
    kv_layer: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """q: [n, heads, d]; kv_layer: [blocks, block_size, 2, kv_heads, d];
    block_tables: [n, max_blocks] int64; context_lens: [n] int64 -> [n, heads, d]."""
    return torch.ops.inference_kernels.paged_decode(q, kv_layer, block_tables, context_lens, scale)
