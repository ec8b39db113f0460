"""Engine step time on this machine: ms per decode step at batch 1, 8 and 32, plus prefill.

Runs the engine directly (no HTTP), so the figures isolate scheduler + model + sampler.
Usage: ``.venv/bin/python -m bench.engine_step [--dtype bfloat16] [--steps 30] [--tiny]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from inference.config import EngineConfig, ModelConfig
from inference.cpu import physical_cpu_count
from inference.engine.engine import Engine
from inference.model.loader import load_model
from inference.types import Request, SamplingParams
from tests.support.tiny_model import build_tiny_llama


def _fill(engine: Engine, batch: int, prompt_len: int, tag: str) -> None:
    for i in range(batch):
        prompt = [(i * 7919 + j * 31) % 40000 + 100 for j in range(prompt_len)]
        params = SamplingParams(max_new_tokens=1000, ignore_eos=True)
        engine.add_request(Request(f"{tag}-{i}", prompt, params))


def measure_decode(engine: Engine, batch: int, steps: int, prompt_len: int) -> list[float]:
    _fill(engine, batch, prompt_len, f"b{batch}")
    while engine.num_waiting or any(s.is_prefilling for s in engine.scheduler.running):
        engine.step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        engine.step()
        times.append((time.perf_counter() - t0) * 1e3)
    engine.abort_all()
    return times


def measure_prefill(engine: Engine, prompt_len: int, repeats: int = 3) -> float:
    """Best of ``repeats`` single-step prefills (distinct prompts: no prefix-cache hits)."""
    best = float("inf")
    for r in range(repeats):
        prompt = [(r * 104729 + j * 37) % 40000 + 100 for j in range(prompt_len)]
        engine.add_request(Request(f"p{prompt_len}-{r}", prompt, SamplingParams(max_new_tokens=1)))
        t0 = time.perf_counter()
        engine.step()
        best = min(best, (time.perf_counter() - t0) * 1e3)
        engine.abort_all()
    return best


def profile_decode(engine: Engine, prompt_len: int, steps: int = 20) -> None:
    """Where a batch-1 decode step's time goes, by op (self CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    _fill(engine, 1, prompt_len, "profile")
    while engine.num_waiting or any(s.is_prefilling for s in engine.scheduler.running):
        engine.step()
    engine.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            engine.step()
    engine.abort_all()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--quantize", default="auto", help="auto, none, int8 or int4")
    parser.add_argument("--profile", action="store_true", help="top ops of batch-1 decode")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--tiny", action="store_true", help="random 2-layer model")
    args = parser.parse_args()
    torch.set_num_threads(physical_cpu_count())
    loaded = (
        build_tiny_llama()
        if args.tiny
        else load_model(ModelConfig(dtype=args.dtype, quantize=args.quantize))
    )
    config = EngineConfig(max_batch_prefill_tokens=2048)
    engine = Engine(loaded, config)
    engine.warmup()
    print(
        f"model={loaded.model_id} dtype={loaded.dtype} quantize={loaded.quantize} "
        f"threads={torch.get_num_threads()} runner={type(engine.runner).__name__}"
    )
    if args.profile:
        profile_decode(engine, args.prompt_len)
    for batch in [int(b) for b in args.batches.split(",")]:
        times = measure_decode(engine, batch, args.steps, args.prompt_len)
        p50 = statistics.median(times)
        print(
            f"decode batch={batch:3d}: p50 {p50:7.1f} ms/step  min {min(times):7.1f}  "
            f"-> {batch * 1e3 / p50:7.1f} tok/s"
        )
    for length in (128, 512, 2000):
        print(f"prefill {length} tokens: {measure_prefill(engine, length):7.1f} ms (best of 3)")


if __name__ == "__main__":
    main()
