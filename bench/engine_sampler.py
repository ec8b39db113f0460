"""Sampler cost per step for a batch of 32 rows over the bundled vocabulary (49152).

Usage: ``.venv/bin/python -m bench.engine_sampler``
"""

from __future__ import annotations

import time

import torch

from inference.cpu import physical_cpu_count
from inference.engine.sampler import SamplerRow, sample
from inference.types import SamplingParams

CASES = {
    "greedy": dict(),
    "greedy + top_n 5": dict(top_n_tokens=5),
    "sample t=0.7": dict(do_sample=True, temperature=0.7),
    "sample t=0.7 top_p=0.95": dict(do_sample=True, temperature=0.7, top_p=0.95),
    "chat (t=0.6 top_k=50 top_p=0.95 rep=1.2)": dict(
        do_sample=True, temperature=0.6, top_k=50, top_p=0.95, repetition_penalty=1.2
    ),
}


def main(batch: int = 32, vocab: int = 49152, repeats: int = 20) -> None:
    torch.set_num_threads(physical_cpu_count())
    # Peaked like a real model's logits: a few likely tokens, a long tail.
    logits = torch.randn(batch, vocab) * 2.5
    history = [list(range(i, i + 200)) for i in range(batch)]
    for name, params in CASES.items():
        rows = [
            SamplerRow(
                SamplingParams(**params),
                torch.Generator().manual_seed(i) if params.get("do_sample") else None,
                history[i][:100],
                history[i][100:],
            )
            for i in range(batch)
        ]
        sample(logits, rows)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sample(logits, rows)
            times.append((time.perf_counter() - t0) * 1e3)
        p50 = sorted(times)[repeats // 2]
        print(f"{name:45s} batch {batch}: min {min(times):6.2f} ms  p50 {p50:6.2f} ms")


if __name__ == "__main__":
    main()
