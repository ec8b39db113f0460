"""`python -m bench` / `make bench`: this server against `transformers serve --continuous-batching`.

Same model directory, same prompts, same streaming `/v1/chat/completions` load at each
concurrency, servers alternated row by row, each warmed up first by one short run at the
highest concurrency (so no row pays for kernel creation); then the chunked-prefill check
(a long prompt arriving while streams decode), and one more run of this server and the bf16
peer with every prompt distinct (the table's 8 prompts repeat, which prefix caching serves).
Prints one table plus the machine's limits.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.limits import format_limits, measure
from bench.load import PROMPTS, LoadSummary, StreamResult, percentile, run_load, stream_one
from bench.servers import RunningServer, ServerSpec, our_server, transformers_serve

WARMUP_TOKENS = 16  # per request of the warm-up run, at the highest concurrency measured


@dataclass
class Row:
    server: str
    summary: LoadSummary
    peak_rss_mb: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="HF model directory")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", help="dtype of this server")
    parser.add_argument("--concurrency", default="1,8,32,64", help="comma-separated")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--baselines", default="float32,bfloat16", help="transformers serve dtypes ('' for none)"
    )
    parser.add_argument("--max-batch-total-tokens", type=int, default=None)
    parser.add_argument("--long-prompt-tokens", type=int, default=2000)
    parser.add_argument("--skip-limits", action="store_true")
    return parser.parse_args(argv)


def fmt_ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f}"


def print_table(rows: list[Row], ours_label: str) -> None:
    header = (
        f"| {'server':<34} | clients | tok/s | TTFT p50 ms | TTFT p95 ms | ITL p50 ms "
        f"| ITL p95 ms | peak RSS MB | errors | ours/theirs tok/s | ours/theirs TTFT p50 |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    by_conc: dict[int, dict[str, Row]] = {}
    for row in rows:
        by_conc.setdefault(row.summary.concurrency, {})[row.server] = row
    for conc, group in sorted(by_conc.items()):
        ours = group.get(ours_label)
        for label, row in group.items():
            s = row.summary
            tput_ratio = ttft_ratio = ""
            if ours and label != ours_label and s.tokens_per_s:
                tput_ratio = f"{ours.summary.tokens_per_s / s.tokens_per_s:.2f}x"
                if s.ttft_p50 == s.ttft_p50 and s.ttft_p50 > 0:
                    ttft_ratio = f"{ours.summary.ttft_p50 / s.ttft_p50:.2f}"
            print(
                f"| {label:<34} | {conc:>7} | {s.tokens_per_s:>5.0f} | {fmt_ms(s.ttft_p50):>11} "
                f"| {fmt_ms(s.ttft_p95):>11} | {fmt_ms(s.itl_p50):>10} | {fmt_ms(s.itl_p95):>10} "
                f"| {row.peak_rss_mb:>11.0f} | {s.errors:>6} | {tput_ratio:>17} "
                f"| {ttft_ratio:>20} |"
            )


def distinct_prompts(conc: int, tag: str) -> list[str]:
    """The load's prompts, each opened by a unique request line, so that two clients (or two
    runs) share only the chat template's system prompt: nothing else can come from a cache."""
    return [f"Request {tag}-{i}. {PROMPTS[i % len(PROMPTS)]}" for i in range(conc)]


def run_distinct(server: RunningServer, conc: int, max_tokens: int) -> LoadSummary:
    tag = f"{time.time_ns()}"
    summary, _ = asyncio.run(
        run_load(
            server.base_url,
            server.spec.model_name,
            concurrency=conc,
            max_tokens=max_tokens,
            prompts=distinct_prompts(conc, tag),
        )
    )
    return summary


async def prefill_interference(
    server: RunningServer, model: str, streams: int, long_tokens: int, max_tokens: int
) -> tuple[float, float, float]:
    """ITL p50/p95 of `streams` decoding streams while a `long_tokens` prompt is prefilled."""
    import httpx

    long_prompt = "Summarise this text. " + " ".join(
        ["the quick brown fox jumps"] * (long_tokens // 5)
    )
    limits = httpx.Limits(max_connections=streams + 8)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        tasks = [  # the load's prompts, which ask for long answers (a stream must outlast
            # the injection; a short one would end with EOS before it)
            asyncio.create_task(
                stream_one(client, server.base_url, model, PROMPTS[i % len(PROMPTS)], max_tokens)
            )
            for i in range(streams)
        ]
        await asyncio.sleep(1.0)  # let the streams reach steady decoding
        injected_at = time.perf_counter()
        long_task = asyncio.create_task(stream_one(client, server.base_url, model, long_prompt, 8))
        results: list[StreamResult] = await asyncio.gather(*tasks)
        long_result = await long_task
    gaps = [
        b - a
        for r in results
        for a, b in zip(r.chunk_times, r.chunk_times[1:], strict=False)
        if b >= injected_at - 0.5
    ]
    if not gaps:
        raise RuntimeError("every stream ended before the long prompt arrived: no measurement")
    long_ttft = long_result.ttft if long_result.ttft is not None else float("nan")
    return statistics.median(gaps), percentile(gaps, 95), long_ttft


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model_dir is None:
        from inference.model_source import ensure_bundled_model

        args.model_dir = ensure_bundled_model()
    levels = [int(c) for c in args.concurrency.split(",") if c]
    flags = {}
    if args.max_batch_total_tokens:
        flags["max_batch_total_tokens"] = args.max_batch_total_tokens
    specs: list[ServerSpec] = [our_server(args.model_dir, args.dtype, args.device, **flags)]
    specs += [transformers_serve(args.model_dir, d) for d in args.baselines.split(",") if d]
    ours_label = specs[0].label
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.perf_counter()
    servers = [RunningServer(spec, logs / f"server{i}.log") for i, spec in enumerate(specs)]
    rows: list[Row] = []
    try:
        for server in servers:
            server.wait_ready()
        for server in servers:  # warm-up: the first batches of each size create kernels
            asyncio.run(
                run_load(
                    server.base_url,
                    server.spec.model_name,
                    concurrency=max(levels),
                    max_tokens=WARMUP_TOKENS,
                )
            )
        for conc in levels:
            for server in servers:  # alternate servers at each level
                server.reset_peak()
                summary, results = asyncio.run(
                    run_load(
                        server.base_url,
                        server.spec.model_name,
                        concurrency=conc,
                        max_tokens=args.max_tokens,
                    )
                )
                rows.append(Row(server.spec.label, summary, server.peak_rss / 2**20))
                if failures := [r.error for r in results if r.error]:
                    print(f"  {server.spec.label}: first error: {failures[0]}", file=sys.stderr)
                print(
                    f"  {server.spec.label}: {conc} clients done in {summary.wall_s:.1f} s",
                    file=sys.stderr,
                )
        distinct_level = 32 if 32 in levels else max(levels)
        peers = [sv for sv in servers[1:] if sv.spec.label.endswith("(bfloat16)")]
        distinct = [
            (sv.spec.label, run_distinct(sv, distinct_level, args.max_tokens))
            for sv in [servers[0], *peers]
        ]
        itl_p50, itl_p95, long_ttft = asyncio.run(
            prefill_interference(
                servers[0], specs[0].model_name, 16, args.long_prompt_tokens, args.max_tokens
            )
        )
    finally:
        for server in servers:
            server.stop()
    print(
        f"\nStreaming /v1/chat/completions, {args.max_tokens} new tokens per request, "
        f"model {args.model_dir.name}"
    )
    print_table(rows, ours_label)
    print(
        f"\nChunked prefill: 16 streams decoding while a ~{args.long_prompt_tokens}-token prompt "
        "arrives "
        f"({ours_label}): ITL p50 {itl_p50 * 1000:.0f} ms, p95 {itl_p95 * 1000:.0f} ms "
        f"(p95/p50 = {itl_p95 / itl_p50:.2f}); the long prompt's TTFT {long_ttft:.2f} s"
    )
    print(
        f"\nEvery prompt distinct ({distinct_level} clients, a unique first line each: only the "
        "chat template's system prompt is shared, so no answer comes from a cached prompt):"
    )
    ours_distinct = distinct[0][1]
    for label, summary in distinct:
        ratio = ""
        if label != ours_label and summary.ttft_p50 and summary.tokens_per_s:
            ratio = (
                f" (ours/theirs: {ours_distinct.tokens_per_s / summary.tokens_per_s:.2f}x tok/s, "
                f"TTFT {ours_distinct.ttft_p50 / summary.ttft_p50:.2f})"
            )
        print(
            f"  {label}: {summary.tokens_per_s:.0f} tok/s, TTFT p50 {fmt_ms(summary.ttft_p50)} ms, "
            f"p95 {fmt_ms(summary.ttft_p95)} ms, errors {summary.errors}{ratio}"
        )
    if not args.skip_limits:
        print("\nLimits of this machine:")
        print(format_limits(measure(args.model_dir)))
    print(f"\nbench finished in {time.perf_counter() - started:.0f} s (server logs in {logs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
