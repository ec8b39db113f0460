"""Engine step time on this machine: ms per decode step at batch 1, 8 and 32, plus prefill.

Runs the engine directly (no HTTP), so the figures isolate scheduler + model + sampler.
Usage: ``.venv/bin/python -m bench.engine_step [--dtype bfloat16] [--steps 30] [--tiny]``.
``--runners fused,transformers,fallback`` serves the same (Llama-family) model by each path
in turn, one model load each, alternating at every batch size: the hand-fused forward, the
transformers backend over the paged cache, and the one-sequence-at-a-time fallback.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from inference.config import EngineConfig, ModelConfig
from inference.cpu import physical_cpu_count
from inference.engine.engine import Engine
from inference.engine.scheduler import SchedulerConfig
from inference.model.loader import LoadedModel, load_model
from inference.model.runner import build_runner
from inference.model.runner_base import ModelRunner
from inference.model.transformers_backend import TransformersPagedRunner
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


RUNNERS = ("auto", "fused", "transformers", "fallback")


def make_engine(loaded: LoadedModel, config: EngineConfig, runner: str) -> Engine:
    """An engine whose model is served by ``runner`` (``auto``: the path the server picks)."""
    scheduler_config = SchedulerConfig.from_engine_config(config)
    num_blocks, block_size = scheduler_config.num_blocks, scheduler_config.block_size
    chosen: ModelRunner | None = None
    if runner == "transformers":
        chosen = TransformersPagedRunner(loaded, num_blocks, block_size)
    elif runner == "fallback":
        chosen = build_runner(loaded, num_blocks, block_size, force_hf=True)
    engine = Engine(loaded, config, scheduler_config, chosen)
    if runner == "fused" and loaded.runner != "fused":
        raise SystemExit(f"the fused path does not serve this model: {loaded.runner_reason}")
    return engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--quantize", default="auto", help="auto, none, int8 or int4")
    parser.add_argument("--profile", action="store_true", help="top ops of batch-1 decode")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--tiny", action="store_true", help="random 2-layer model")
    parser.add_argument(
        "--runners",
        default="auto",
        help=f"comma-separated, of {', '.join(RUNNERS)}: the paths compared, in turn",
    )
    args = parser.parse_args()
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    if unknown := [r for r in runners if r not in RUNNERS]:
        raise SystemExit(f"unknown runner {', '.join(unknown)}: expected {', '.join(RUNNERS)}")
    torch.set_num_threads(physical_cpu_count())
    config = EngineConfig(max_batch_prefill_tokens=2048)
    engines: dict[str, Engine] = {}
    for runner in runners:
        loaded = (
            build_tiny_llama()
            if args.tiny
            else load_model(ModelConfig(dtype=args.dtype, quantize=args.quantize))
        )
        engine = engines[runner] = make_engine(loaded, config, runner)
        engine.warmup()
        print(
            f"model={loaded.model_id} dtype={loaded.dtype} quantize={loaded.quantize} "
            f"threads={torch.get_num_threads()} runner={type(engine.runner).__name__}"
        )
    if args.profile:
        for engine in engines.values():
            profile_decode(engine, args.prompt_len)
    label = max(len(r) for r in runners)
    for batch in [int(b) for b in args.batches.split(",")]:
        for runner, engine in engines.items():  # alternating: the machine's noise hits all
            times = measure_decode(engine, batch, args.steps, args.prompt_len)
            p50 = statistics.median(times)
            print(
                f"{runner:{label}} decode batch={batch:3d}: p50 {p50:7.1f} ms/step  "
                f"min {min(times):7.1f}  -> {batch * 1e3 / p50:7.1f} tok/s"
            )
    max_prompt = min(engine.max_total_tokens for engine in engines.values()) - 1
    for length in [n for n in (128, 512, 2000) if n <= max_prompt]:  # --tiny: 511 at most
        for runner, engine in engines.items():
            best = measure_prefill(engine, length)
            print(f"{runner:{label}} prefill {length} tokens: {best:7.1f} ms (best of 3)")


if __name__ == "__main__":
    main()
