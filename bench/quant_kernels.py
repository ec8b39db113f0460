"""`python -m bench.quant_kernels`: the 4/8-bit linear kernels against the dense matmul.

Milliseconds per call (fastest of several) for one SmolLM2-135M decoder layer's four
projections (4-bit) and its output head (8-bit), at batches from 1 to a prefill chunk: the row
layout, the tiled layout (8 rows of W share each load of x), ``F.linear`` in float32 over a
dense copy, and the float32 matmul over W de-quantized slab by slab (what serves the batches
beyond the kernels' crossover, with no dense copy held). Prints the CPU's ISA and the kernel
path first. ``--cpu-tier avx2`` re-runs itself capped at AVX2 (this server's kernels, torch,
oneDNN and MKL, as ``python -m bench --cpu-tier avx2``): what an AVX2-only CPU would run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.machine import CPU_TIER_ENV, isa_line
from inference import kernels
from inference.model.quant import quantize, tile_rows

LAYER = [(960, 576), (576, 576), (3072, 576), (576, 1536)]  # qkv, o, gate_up, down
HEAD = (49152, 576)
ROWS = (1, 2, 4, 8, 13, 16, 32, 48, 64, 256)


def best_ms(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int) -> float:
    fn(x)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - started)
    return min(times) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quant_kernels", description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cpu-tier", choices=sorted(CPU_TIER_ENV), default="native")
    args = parser.parse_args(argv)
    tier_env = CPU_TIER_ENV[args.cpu_tier]
    if any(os.environ.get(key) != value for key, value in tier_env.items()):
        # torch, MKL and the kernels read the caps when they load: a fresh process takes them
        command = [sys.executable, "-m", "bench.quant_kernels", "--threads", str(args.threads)]
        os.execve(sys.executable, command, {**os.environ, **tier_env})
    torch.set_num_threads(args.threads)
    if not kernels.available():
        raise SystemExit("the CPU kernels could not be built here")
    print(isa_line())
    print(f"kernel path {kernels.quant_kernel_path()}, {args.threads} threads")
    gen = torch.Generator().manual_seed(0)
    dense = [torch.randn(n, k, generator=gen) * 0.02 for n, k in LAYER]
    q4 = [quantize(w, 4) for w in dense]
    t4 = [tile_rows(q) for q in q4]
    head = torch.randn(*HEAD, generator=gen) * 0.02
    q8 = quantize(head, 8)
    t8 = tile_rows(q8)
    print(
        "| rows | layer q4 rows | layer q4 tiles | layer fp32 dense | layer fp32 slabs "
        "| tiles vs dense | head q8 rows | head q8 tiles | head fp32 dense | tiles vs dense |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rows in ROWS:
        repeats = 15 if rows <= 64 else 3
        xs = [torch.randn(rows, k, generator=gen) for _, k in LAYER]
        by_rows = sum(
            best_ms(lambda x, w=w: kernels.q4_linear(x, w.qs, w.d, w.m), x, repeats)
            for w, x in zip(q4, xs, strict=True)
        )
        tiles = sum(
            best_ms(lambda x, w=w: kernels.q4_linear_tiled(x, *w.tensors), x, repeats)
            for w, x in zip(t4, xs, strict=True)
        )
        flat = sum(
            best_ms(lambda x, w=w: F.linear(x, w), x, repeats)
            for w, x in zip(dense, xs, strict=True)
        )
        slabs = sum(
            best_ms(lambda x, w=w: kernels.q4_linear_slabs(x, *w.tensors), x, repeats)
            for w, x in zip(t4, xs, strict=True)
        )
        xh = torch.randn(rows, HEAD[1], generator=gen)
        head_rows = best_ms(lambda x: kernels.q8_linear(x, q8.qs, q8.d), xh, max(3, repeats // 3))
        head_tiles = best_ms(lambda x: kernels.q8_linear_tiled(x, *t8.tensors), xh, 3)
        head_dense = best_ms(lambda x: F.linear(x, head), xh, 3)
        print(
            f"| {rows} | {by_rows:.3f} | {tiles:.3f} | {flat:.3f} | {slabs:.3f} "
            f"| {flat / tiles:.2f}x "
            f"| {head_rows:.2f} | {head_tiles:.2f} | {head_dense:.2f} | "
            f"{head_dense / head_tiles:.2f}x |"
        )


if __name__ == "__main__":
    main()
