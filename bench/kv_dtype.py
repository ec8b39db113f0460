"""The KV-dtype rows: for each ``--kv-cache-dtype``, what fits, how fast, and how close.

For the bundled model as served (its dtype and weights as ``python -m inference`` picks
them), one row per cache dtype:
- tokens that fit in the memory the default cache (``--max-batch-total-tokens`` 65,536) takes
  in the model's dtype, and the sequences of ``--context`` + ``--new-tokens`` that fit there;
- decode tok/s with 32 sequences at ``--context`` tokens each: one engine per dtype over the
  same model, prefilled, then stepped in turn so that every engine sees the same load at the
  same moments (a busy machine slows them alike); 32 / the median step time;
- the teacher-forced quality against the float32 cache (``bench.kv_quality``).

Part of ``make bench`` (``python -m bench``); alone: ``.venv/bin/python -m bench.kv_dtype``.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from dataclasses import dataclass

DTYPES = ("auto", "int8", "fp8_e4m3fn", "fp8_e5m2")
BATCH = 32


@dataclass
class KVRow:
    """One cache dtype's figures."""

    name: str  # the format served ("bfloat16", "int8", ...)
    bytes_per_token: int
    tokens: int  # tokens the cache holds in the default cache's memory
    sequences: int  # sequences of context + new tokens that fit
    step_s: float  # median decode step, 32 sequences
    quality: str  # teacher-forced against the float32 cache ("" where not measured)

    @property
    def tokens_per_s(self) -> float:
        return BATCH / self.step_s if self.step_s else 0.0


def _engines(loaded, context: int, new_tokens: int, seed: int = 0):
    """One engine per dtype, each holding 32 distinct prompts of ``context`` tokens, prefilled."""
    from inference.config import EngineConfig
    from inference.engine.engine import Engine
    from inference.types import Request, SamplingParams

    rng = random.Random(seed)
    vocab = len(loaded.tokenizer)
    prompts = [[rng.randrange(1000, vocab) for _ in range(context)] for _ in range(BATCH)]
    engines = {}
    for name in DTYPES:
        engine = Engine(dataclasses.replace(loaded, kv_cache_dtype=name), EngineConfig())
        for i, ids in enumerate(prompts):
            params = SamplingParams(max_new_tokens=new_tokens, ignore_eos=True)
            engine.add_request(Request(f"{name}-{i}", ids, params))
        while any(s.seq.is_prefilling for s in engine.states.values()):
            engine.step()  # prefill done: time decode steps only
        engines[name] = engine
    return engines


def kv_rows(context: int = 512, new_tokens: int = 64, steps: int = 24, quality: bool = True):
    """The rows, the model dtype's first."""
    from bench.kv_quality import PROMPTS, QualityMeter, float32_model, greedy_answers
    from inference.config import ModelConfig
    from inference.model.loader import load_model

    loaded = load_model(ModelConfig())
    loaded.frees_hf_weights = False  # one model, several runners
    engines = _engines(loaded, context, new_tokens + steps)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(steps):
        for name, engine in engines.items():
            started = time.perf_counter()
            engine.step()
            times[name].append(time.perf_counter() - started)
    qualities = {}
    if quality:
        reference = load_model(ModelConfig(dtype="float32", quantize="none"))
        meter = QualityMeter(float32_model(reference), greedy_answers(reference, PROMPTS, 24))
        qualities = {n: meter.measure(n).describe() for n in DTYPES if n != "auto"}
    rows = []
    for name, engine in engines.items():
        runner = engine.runner
        bytes_per_token = runner.cache.num_bytes // (runner.num_blocks * runner.block_size)
        blocks_per_seq = -(-(context + new_tokens) // runner.block_size)
        rows.append(
            KVRow(
                name=runner.model.kv_format.name,
                bytes_per_token=bytes_per_token,
                tokens=runner.num_blocks * runner.block_size,
                sequences=runner.num_blocks // blocks_per_seq,
                step_s=sorted(times[name])[len(times[name]) // 2],
                quality=qualities.get(name, ""),
            )
        )
    return rows


def format_rows(rows: list[KVRow], context: int, new_tokens: int) -> str:
    lines = [
        f"KV cache dtype, same cache memory; {BATCH} sequences decoding at {context} tokens; "
        "quality teacher-forced against the float32 cache:",
        f"  {'dtype':<11} {'B/token':>8} {'tokens':>8} {'seqs of ' + str(context + new_tokens):>13}"
        f" {'tok/s c=32':>11}  quality",
    ]
    for r in rows:
        lines.append(
            f"  {r.name:<11} {r.bytes_per_token:>8} {r.tokens:>8} {r.sequences:>13} "
            f"{r.tokens_per_s:>11.0f}  {r.quality or '-'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kv_dtype", description=__doc__)
    parser.add_argument("--context", type=int, default=512, help="prompt tokens per sequence")
    parser.add_argument("--new-tokens", type=int, default=64, help="answer tokens per sequence")
    parser.add_argument("--steps", type=int, default=24, help="decode steps timed per dtype")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality measure")
    args = parser.parse_args(argv)
    rows = kv_rows(args.context, args.new_tokens, args.steps, not args.no_quality)
    print(format_rows(rows, args.context, args.new_tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())
