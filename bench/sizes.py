"""`python -m bench --model-size`: which model each size benchmarks, what it changes in the
run, and the side-by-side summary when several sizes are run.

`135m` is the bundled SmolLM2 GGUF (every row of the benchmark); `1.5b` is the Qwen2.5-1.5B
architecture with random weights that `bench.real_model` makes once, measured at 1 and 32
clients only (a 1.5B decode step on a small CPU is slow) and without the chunked-prefill and
structured-output rows. Pure argument handling and formatting: it starts no server.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass

from bench.load import LoadSummary
from bench.report import by_label, fmt_ms, ratio

BUNDLED_SIZE = "135m"
# size -> bench.real_model name (None: the bundled model)
MODEL_SIZES: dict[str, str | None] = {BUNDLED_SIZE: None, "1.5b": "qwen2.5-1.5b"}
DEFAULT_LEVELS = {BUNDLED_SIZE: "1,8,32,64", "1.5b": "1,32"}
# transformers serve's KV cache on the real size: 32 streams of a short prompt plus the answer
# fit many times over, and its float32 cache of 65,536 tokens would not fit beside the others
REAL_SIZE_CACHE_TOKENS = 16384
# how long a server may take to start on the real size: this server's first start converts the
# GGUF to an HF directory (minutes on a small CPU), and every server reads 1.5 GB or more
REAL_SIZE_READY_TIMEOUT_S = 1800.0


def parse_sizes(text: str) -> list[str]:
    """`--model-size`'s comma-separated sizes, each checked; ValueError names the known ones."""
    sizes = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in MODEL_SIZES]
    if unknown or not sizes:
        raise ValueError(
            f"unknown model size {', '.join(unknown) or repr(text)}: "
            f"expected one or more of {', '.join(MODEL_SIZES)}"
        )
    return sizes


def size_args(args: argparse.Namespace, size: str) -> argparse.Namespace:
    """A copy of the run's arguments for one size: its models, levels and extra rows."""
    one = copy.copy(args)
    one.model_size = size
    one.concurrency = args.concurrency or DEFAULT_LEVELS[size]
    one.extra_rows = size == BUNDLED_SIZE
    one.transformers_cache_tokens = None
    one.ready_timeout_s = None
    if (name := MODEL_SIZES[size]) is not None:
        from bench.real_model import REAL_MODELS, ensure_real_model

        built = ensure_real_model(REAL_MODELS[name])
        one.model_dir, one.gguf = built.hf_dir, built.gguf
        if args.our_model == "bundled":  # this server reads the same GGUF llama-server does
            one.our_model = str(built.gguf)
        one.transformers_cache_tokens = REAL_SIZE_CACHE_TOKENS
        one.ready_timeout_s = REAL_SIZE_READY_TIMEOUT_S
    return one


@dataclass
class SizeResult:
    """The headline figures of one size's run, for the side-by-side summary."""

    size: str
    model: str
    ours_label: str
    one: dict[str, LoadSummary]  # 1 client, the repeated prompts
    distinct: dict[str, LoadSummary]  # 32 distinct clients (or the highest level run)
    our_floor_s: float = float("nan")  # batch-1 bandwidth floor of the weights we read


def _peer(group: dict[str, LoadSummary], prefix: str) -> LoadSummary | None:
    labels = [label for label in group if label.startswith(prefix)]
    best = max(labels, key=lambda label: group[label].tokens_per_s, default=None)
    return group[best] if best else None


def side_by_side(results: list[SizeResult]) -> str:
    """One row per size: 1-stream ITL against llama-server and the floor, many-stream tok/s
    against llama-server and the best transformers serve."""
    header = (
        "| size | model | ours ITL p50 ms (1 stream) | / llama-server | / floor "
        "| ours tok/s (distinct) | / llama-server | / transformers serve |"
    )
    lines = [header, "|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|"]
    nan = float("nan")
    for r in results:
        ours1, ours_n = r.one.get(r.ours_label), r.distinct.get(r.ours_label)
        llama1, llama_n = _peer(r.one, "llama-server"), _peer(r.distinct, "llama-server")
        hf_n = _peer(r.distinct, "transformers")
        itl = ours1.itl_p50 if ours1 else nan
        tput = ours_n.tokens_per_s if ours_n else nan
        level = ours_n.concurrency if ours_n else "-"
        lines.append(
            f"| {r.size} | {r.model} | {fmt_ms(itl)} | "
            f"{ratio(itl, llama1.itl_p50) if llama1 else '-'} | {ratio(itl, r.our_floor_s)} | "
            f"{tput:.0f} at {level} | "
            f"{ratio(tput, llama_n.tokens_per_s) if llama_n else '-'} | "
            f"{ratio(tput, hf_n.tokens_per_s) if hf_n else '-'} |"
        )
    return "\n".join(lines)


def size_result(
    args: argparse.Namespace, ours_label: str, one_rows: list, distinct_rows: list
) -> SizeResult:
    """The summary of one size from its table rows (`bench.report.Row`)."""
    levels = {r.summary.concurrency for r in distinct_rows}
    level = 32 if 32 in levels else max(levels, default=0)
    model = args.gguf.name
    return SizeResult(
        args.model_size, model, ours_label, by_label(one_rows, 1), by_label(distinct_rows, level)
    )
