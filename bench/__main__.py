"""`python -m bench` / `make bench` (over 400 lines: one run's order of servers and rows, kept
in one place; each row's measuring lives in its own module): this server against `transformers serve
--continuous-batching` and llama.cpp's `llama-server`.

Same prompts, same streaming `/v1/chat/completions` load at each concurrency, servers
alternated row by row, each warmed up first by one short run at the highest concurrency (so no
row pays for kernel creation). Two loads at every level: the 8 prompts repeated (which prefix
caching and llama-server's prompt cache serve) and every prompt distinct (only the chat
template's system prompt is shared). Then the chunked-prefill check on this server (a long
prompt arriving while streams decode) and the structured-output row (32 clients, half with a
JSON schema, against the same load unconstrained: `bench.structured`), and the speculative
decoding rows (plain vs `--speculate N` on a quoting and a distinct load, 1 and 32 clients:
`bench.speculative`; `--speculate 0` leaves them out), the KV-dtype rows (what fits,
decode tok/s and quality per `--kv-cache-dtype`: `bench.kv_dtype`, engines without HTTP, after
the servers stop) and the per-token breakdown from the engine's step to the socket
(`bench.token_path`). This server serves the
bundled GGUF (`--our-model bundled`), llama-server the GGUF file itself, the transformers peers
its de-quantised HF directory. Prints the CPU's ISA, two tables, the ratios the targets follow,
the machine's limits and the batch-1 bandwidth floor of the weights each server reads.
`--model-size 1.5b` runs the same comparison (1 and 32 clients) on a Qwen2.5-1.5B-sized model
with random weights, made once by `bench.real_model`; several sizes end with a side-by-side
summary (`bench.sizes`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench import kv_dtype, prefill, speculative
from bench.limits import format_limits, measure
from bench.llama_cpp import LlamaCppBuildError, llama_server_binary
from bench.load import PROMPTS, StreamResult, percentile, run_load, stream_one
from bench.machine import CPU_TIER_ENV, apply_cpu_tier, isa_line
from bench.processes import VENV_BIN
from bench.report import (
    Row,
    by_label,
    floor_lines,
    our_weight_bytes,
    print_table,
    target_ratios,
)
from bench.servers import (
    RunningServer,
    ServerSpec,
    llama_server,
    our_server,
    start_all,
    transformers_serve,
)
from bench.sizes import (
    BUNDLED_SIZE,
    DEFAULT_LEVELS,
    MODEL_SIZES,
    SizeResult,
    parse_sizes,
    side_by_side,
    size_args,
    size_result,
)
from bench.speculative import DEFAULT_SPECULATE
from bench.structured import format_row, structured_row

# transformers serve at its best dtype on this CPU (bf16 where the CPU has native bf16, else
# float32: measured slower in bf16 there), and llama-server on the bundled GGUF
DEFAULT_PEERS = "transformers:best,llama.cpp"

WARMUP_TOKENS = 16  # per request of the warm-up run, at the highest concurrency measured


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="HF model directory of the transformers peers"
    )
    parser.add_argument(
        "--our-model",
        default="bundled",
        help="this server's --model-id ('bundled': the GGUF's own weights; 'dir': --model-dir)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", help="dtype of this server")
    parser.add_argument(
        "--model-size",
        default=BUNDLED_SIZE,
        help=f"comma-separated, of {', '.join(MODEL_SIZES)}: the bundled model, or a model of "
        "that size made once with random weights (bench.real_model); several run in turn and "
        "end with a side-by-side summary",
    )
    parser.add_argument(
        "--concurrency",
        default=None,
        help="comma-separated (default: "
        + "; ".join(f"{size}: {levels}" for size, levels in DEFAULT_LEVELS.items())
        + ")",
    )
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--peers",
        default=DEFAULT_PEERS,
        help="comma-separated: transformers:<dtype> and/or llama.cpp ('' for none)",
    )
    parser.add_argument("--llama-slots", type=int, default=32, help="llama-server -np")
    parser.add_argument(
        "--llama-threads", type=int, default=os.cpu_count() or 2, help="llama-server -t"
    )
    parser.add_argument("--max-batch-total-tokens", type=int, default=None)
    parser.add_argument(
        "--long-prompt-tokens",
        default="2000,8000",
        help="comma-separated: the chunked-prefill rows' long prompts (8000: the bundled "
        "model's context, less the chat template and the answer)",
    )
    parser.add_argument(
        "--skip-prefill",
        action="store_true",
        help="leave out the prefill rows (bench.prefill: prompt tok/s against llama-server)",
    )
    parser.add_argument("--skip-limits", action="store_true")
    parser.add_argument(
        "--speculate",
        type=int,
        default=DEFAULT_SPECULATE,
        help="draft tokens of the speculative decoding rows (bundled size; 0: no such rows)",
    )
    parser.add_argument(
        "--cpu-tier",
        default="native",
        choices=list(CPU_TIER_ENV),
        help="native: every extension this CPU has; avx2: every server capped at AVX2 "
        "(llama-server built without AVX-512), what an AVX2-only CPU runs",
    )
    return parser.parse_args(argv)


def distinct_prompts(conc: int, tag: str) -> list[str]:
    """The load's prompts, each opened by a unique request line, so that two clients (or two
    runs) share only the chat template's system prompt: nothing else can come from a cache."""
    return [f"Request {tag}-{i}. {PROMPTS[i % len(PROMPTS)]}" for i in range(conc)]


def run_level(
    server: RunningServer, conc: int, max_tokens: int, prompts: Sequence[str] = PROMPTS
) -> Row:
    """One load run at `conc` clients; its first error, if any, goes to stderr."""
    server.reset_peak()
    summary, results = asyncio.run(
        run_load(
            server.base_url,
            server.spec.model_name,
            concurrency=conc,
            max_tokens=max_tokens,
            prompts=prompts,
            extras=server.spec.request_extras,
        )
    )
    if failures := [r.error for r in results if r.error]:
        print(f"  {server.spec.label}: first error: {failures[0]}", file=sys.stderr)
    return Row(server.spec.label, summary, server.peak_rss / 2**20)


async def prefill_interference(
    server: RunningServer, model: str, streams: int, long_tokens: int, max_tokens: int
) -> tuple[float, float, float]:
    """ITL p50/p95 of `streams` decoding streams while a `long_tokens` prompt is prefilled."""
    long_prompt = "Summarise this text. " + " ".join(
        ["the quick brown fox jumps"] * (long_tokens // 5)
    )
    limits = httpx.Limits(max_connections=streams + 8)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        tasks = [  # the load's prompts, which ask for long answers (a stream must outlast
            # the injection; a short one would end with EOS before it)
            asyncio.create_task(
                stream_one(
                    client,
                    server.base_url,
                    model,
                    PROMPTS[i % len(PROMPTS)],
                    max_tokens,
                    server.spec.request_extras,
                )
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


def peer_specs(args: argparse.Namespace) -> tuple[list[ServerSpec], list[str]]:
    """The peers `--peers` names; one that cannot be had is left out with a note saying why."""
    specs: list[ServerSpec] = []
    notes: list[str] = []
    for peer in (p.strip() for p in args.peers.split(",")):
        if not peer:
            continue
        kind, _, dtype = peer.partition(":")
        if kind == "transformers":
            if dtype in ("", "best"):
                from inference.cpu import cpu_info

                dtype = "bfloat16" if cpu_info().native_bf16 else "float32"
            cache = {"cache_tokens": args.transformers_cache_tokens}
            specs.append(
                transformers_serve(args.model_dir, dtype, **{k: v for k, v in cache.items() if v})
            )
        elif kind in ("llama.cpp", "llama-server"):
            try:
                binary = llama_server_binary(args.cpu_tier)
            except LlamaCppBuildError as exc:
                notes.append(f"llama-server left out: {exc}")
                continue
            specs.append(llama_server(binary, args.gguf, args.llama_slots, args.llama_threads))
        else:
            raise SystemExit(f"unknown peer {peer!r} (transformers:<dtype> or llama.cpp)")
    return specs, notes


def token_path_section(max_tokens: int) -> str:
    """`bench.token_path`'s table, run in its own process once every server has stopped."""
    argv = [str(VENV_BIN / "python"), "-m", "bench.token_path", "--max-tokens", str(max_tokens)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"\nToken path: failed ({done.stderr.strip().splitlines()[-1:]})"
    return done.stdout.rstrip()


def our_info(server: RunningServer) -> dict:
    try:
        return httpx.get(server.base_url + "/info", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sizes = parse_sizes(args.model_size)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    apply_cpu_tier(args.cpu_tier)
    from inference.model.source import bundled_gguf_path, ensure_bundled_model

    print(isa_line(), flush=True)
    if args.model_dir is None:
        args.model_dir = ensure_bundled_model()
    args.gguf = bundled_gguf_path()
    results = [run_size(size_args(args, size)) for size in sizes]
    if len(results) > 1:
        print(f"\n{isa_line()}\nEvery size side by side (ours / theirs; floor: bytes / bandwidth):")
        print(side_by_side(results))
    if not args.skip_prefill and BUNDLED_SIZE in sizes:
        rows, notes = prefill.run(args.cpu_tier, threads=args.llama_threads)
        print(
            f"\nPrefill (bench.prefill, --cpu-tier {args.cpu_tier}): one cold prompt, 1 token "
            f"generated, alone and with {prefill.DEFAULT_STREAMS} streams decoding:"
        )
        print(prefill.format_rows(rows))
        for note in notes:
            print(note)
    return 0


def run_size(args: argparse.Namespace) -> SizeResult:
    """The whole comparison on one model size; prints its tables and returns its summary."""
    if args.model_size != BUNDLED_SIZE:
        print(f"\nModel size {args.model_size}: {args.gguf.name} (random weights)", flush=True)
    our_model = args.model_dir if args.our_model == "dir" else args.our_model
    levels = [int(c) for c in args.concurrency.split(",") if c]
    flags = {}
    if args.max_batch_total_tokens:
        flags["max_batch_total_tokens"] = args.max_batch_total_tokens
    ours_spec = our_server(our_model, args.dtype, args.device, **flags)
    ours_label = ours_spec.label
    started = time.perf_counter()
    peers, notes = peer_specs(args)
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    servers, start_notes = start_all(
        [ours_spec, *peers], logs, ready_timeout_s=args.ready_timeout_s or None
    )
    notes += start_notes
    for note in notes:
        print(f"  {note}", file=sys.stderr)
    repeated: list[Row] = []
    distinct: list[Row] = []
    try:
        info = our_info(servers[0])
        for server in servers:  # warm-up: the first batches of each size create kernels
            run_level(server, max(levels), WARMUP_TOKENS)
        for conc in levels:
            for server in servers:  # alternate servers at each level
                repeated.append(run_level(server, conc, args.max_tokens))
                tag = f"{time.time_ns()}"
                distinct.append(
                    run_level(server, conc, args.max_tokens, distinct_prompts(conc, tag))
                )
                print(
                    f"  {server.spec.label}: {conc} clients done "
                    f"({repeated[-1].summary.wall_s:.1f} s repeated, "
                    f"{distinct[-1].summary.wall_s:.1f} s distinct)",
                    file=sys.stderr,
                )
        if args.extra_rows:
            interference = [
                (n, *asyncio.run(prefill_interference(
                    servers[0], ours_spec.model_name, 16, n, max(args.max_tokens, n // 8)
                )))  # the streams' answers outlast the long prompt's prefill
                for n in (int(t) for t in args.long_prompt_tokens.split(",") if t)
            ]  # fmt: skip
            structured = structured_row(servers[0], ours_spec.model_name, 32, args.max_tokens)
    finally:
        for server in servers:
            server.stop()
    kv_context, kv_new_tokens = 512, 64
    kv_table = kv_dtype.kv_rows(kv_context, kv_new_tokens) if args.extra_rows else []
    print(
        f"\nStreaming /v1/chat/completions, {args.max_tokens} new tokens per request; ours "
        f"--model-id {our_model} ({info.get('model_dtype', '?')}, quantize "
        f"{info.get('quantize')}), transformers serve {'/'.join(args.model_dir.parts[-2:])}, "
        f"llama-server {args.gguf.name}"
    )
    print("\nThe 8 prompts repeated (prompt caches serve them):")
    print_table(repeated, ours_label)
    print(
        "\nEvery prompt distinct (a unique first line each: only the chat template's system "
        "prompt is shared, so no answer comes from a cached prompt):"
    )
    print_table(distinct, ours_label)
    print("\n" + target_ratios(repeated, distinct, ours_label))
    for note in notes:
        print(note)
    if args.extra_rows:
        for long_tokens, itl_p50, itl_p95, long_ttft in interference:
            print(
                f"\nChunked prefill: 16 streams decoding while a ~{long_tokens}-token "
                f"prompt arrives ({ours_label}): ITL p50 {itl_p50 * 1000:.0f} ms, "
                f"p95 {itl_p95 * 1000:.0f} ms (p95/p50 = {itl_p95 / itl_p50:.2f}); "
                f"the long prompt's TTFT {long_ttft:.2f} s"
            )
        print(f"\nStructured output ({ours_label}), 32 clients, half with a JSON schema:")
        print(format_row(structured))
    if args.extra_rows and args.speculate:
        spec_rows = speculative.speculative_rows(
            args.max_tokens, args.speculate, model_id=str(our_model)
        )
        print("\n" + speculative.format_rows(spec_rows, args.speculate, args.max_tokens))
    if kv_table:
        print("\n" + kv_dtype.format_rows(kv_table, kv_context, kv_new_tokens))
    if args.extra_rows:
        print(token_path_section(args.max_tokens), flush=True)
    result = size_result(args, ours_label, repeated, distinct)
    if not args.skip_limits:
        limits = measure(args.model_dir)
        print("\nLimits of this machine:")
        print(format_limits(limits))
        for line in floor_lines(args, info, limits.bandwidth_gb_s, by_label(repeated, 1)):
            print(line)
        result.our_floor_s = our_weight_bytes(args, info)[1] / (limits.bandwidth_gb_s * 1e9)
    print(f"\nbench finished in {time.perf_counter() - started:.0f} s (server logs in {logs})")
    return result


if __name__ == "__main__":
    sys.exit(main())
