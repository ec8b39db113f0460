"""`python -m bench.prefill [--cpu-tier avx2]`: prompt processing speed against llama-server.

For each prompt length (512, 2,048 and the bundled model's whole context less the one token
generated: 8,191) one cold prompt is sent to `/v1/completions` with `max_tokens` 1, alone
(c=1) and while 8 streams decode meanwhile (8 clients that each start a new chat request as
soon as one ends). A prompt's speed is its prompt tokens (as the server counted them) over
the request's time, HTTP included. Prompts are random words with a unique seed: nothing
comes from a prompt cache. Both servers read the same GGUF and run at the same CPU tier;
llama-server gets one slot of the full context per client. The streams' inter-token
latency while the long prompt is prefilled (p50 / p95) shows what chunked prefill costs
them. `python -m bench` prints these rows after its tables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.llama_cpp import LlamaCppBuildError, llama_server_binary
from bench.load import PROMPTS, StreamResult, percentile, stream_one
from bench.machine import CPU_TIER_ENV, apply_cpu_tier, isa_line
from bench.servers import RunningServer, llama_server, our_server, start_all

DEFAULT_LENGTHS = (512, 2048, 8191)  # 8,191: the 8,192-token context less the token generated
DEFAULT_STREAMS = 8
STREAM_TOKENS = 1024  # each background stream's answer (they restart when one ends)


@dataclass
class PrefillRow:
    """One cold prompt on one server: its speed and, under load, the streams' ITL."""

    server: str
    length: int
    streams: int
    prompt_tokens: int
    seconds: float
    itl: list[float] = field(default_factory=list)  # background streams' gaps meanwhile
    error: str | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.prompt_tokens / self.seconds if self.seconds else float("nan")


def word_vocabulary(tokenizer) -> list[str]:
    """Lower-case words that are one token each with their leading space."""
    words = []
    for token in tokenizer.get_vocab():
        word = token[1:]
        if token.startswith("\u0120") and word.isalpha() and word.islower() and len(word) > 2:
            if len(tokenizer.encode(" " + word, add_special_tokens=False)) == 1:
                words.append(word)
            if len(words) >= 2000:
                break
    return sorted(words)


def prompt_of(tokenizer, words: Sequence[str], length: int, seed: int) -> str:
    """Random words that the bundled tokenizer reads as exactly ``length`` tokens."""
    rng = random.Random(seed)
    chosen = [rng.choice(words) for _ in range(length)]
    text = " ".join(chosen)
    while (n := len(tokenizer.encode(text, add_special_tokens=False))) != length:
        chosen = chosen[: len(chosen) - (n - length)] if n > length else [*chosen, "the"]
        text = " ".join(chosen)
    return text


async def complete(client: httpx.AsyncClient, server: RunningServer, prompt: str) -> tuple:
    """One `/v1/completions` of one token: (prompt tokens, seconds, error)."""
    body = {"model": server.spec.model_name, "prompt": prompt, "max_tokens": 1, "temperature": 0}
    started = time.perf_counter()
    try:
        resp = await client.post(f"{server.base_url}/v1/completions", json=body)
        seconds = time.perf_counter() - started
        if resp.status_code != 200:
            return 0, seconds, f"HTTP {resp.status_code}: {resp.text[:200]}"
        return int(resp.json()["usage"]["prompt_tokens"]), seconds, None
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return 0, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"


async def decode_meanwhile(
    client: httpx.AsyncClient, server: RunningServer, stop: asyncio.Event, out: list
) -> None:
    """One client that streams a long answer, then another, until ``stop``."""
    i = random.randrange(len(PROMPTS))
    while not stop.is_set():
        prompt = f"Request {time.time_ns()}. {PROMPTS[i % len(PROMPTS)]}"
        task = asyncio.ensure_future(
            stream_one(client, server.base_url, server.spec.model_name, prompt, STREAM_TOKENS)
        )
        done, _ = await asyncio.wait({task, asyncio.ensure_future(stop.wait())},
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if task not in done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        out.append(task.result())
        i += 1


async def measure(server: RunningServer, prompt: str, length: int, streams: int) -> PrefillRow:
    """The prompt's time to its one token, with ``streams`` streams decoding meanwhile."""
    limits = httpx.Limits(max_connections=streams + 4)
    async with httpx.AsyncClient(timeout=900, limits=limits) as client:
        stop = asyncio.Event()
        finished: list[StreamResult] = []
        running = [
            asyncio.create_task(decode_meanwhile(client, server, stop, finished))
            for _ in range(streams)
        ]
        if streams:
            await asyncio.sleep(2.0)  # the streams reach steady decoding
        started = time.perf_counter()
        tokens, seconds, error = await complete(client, server, prompt)
        ended = started + seconds
        stop.set()
        await asyncio.gather(*running)
    gaps = [
        b - a
        for r in finished
        for a, b in zip(r.chunk_times, r.chunk_times[1:], strict=False)
        if started <= a and b <= ended
    ]
    return PrefillRow(server.spec.label, length, streams, tokens, seconds, gaps, error)


def run(
    tier: str = "native",
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    streams: int = DEFAULT_STREAMS,
    threads: int | None = None,
) -> tuple[list[PrefillRow], list[str]]:
    """Every length at c=1 and under load on this server and llama-server, alternated."""
    from transformers import AutoTokenizer

    from inference.model.source import bundled_gguf_path, ensure_bundled_model

    apply_cpu_tier(tier)
    tokenizer = AutoTokenizer.from_pretrained(ensure_bundled_model())
    words = word_vocabulary(tokenizer)
    context = max(lengths) + 1
    specs = [our_server("bundled")]
    notes: list[str] = []
    try:
        binary = llama_server_binary(tier)
        slots = streams + 1
        threads = threads or os.cpu_count() or 2
        specs.append(llama_server(binary, bundled_gguf_path(), slots, threads, slots * context))
    except LlamaCppBuildError as exc:
        notes.append(f"llama-server left out: {exc}")
    logs = Path(tempfile.mkdtemp(prefix="bench-prefill-"))
    # a loaded machine: the model loads in minutes
    servers, start_notes = start_all(specs, logs, prefix="prefill", ready_timeout_s=1800)
    notes += start_notes
    rows: list[PrefillRow] = []
    seed = time.time_ns()
    try:
        for server in servers:  # warm-up: kernels and the first large batch
            asyncio.run(measure(server, prompt_of(tokenizer, words, 256, seed), 256, 0))
        for length in lengths:
            for load in (0, streams):
                for server in servers:
                    seed += 1
                    prompt = prompt_of(tokenizer, words, length, seed)
                    row = asyncio.run(measure(server, prompt, length, load))
                    rows.append(row)
                    print(f"  {row.server}: {length} tokens, {load} streams: "
                          f"{row.seconds:.2f} s", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        for server in servers:
            server.stop()
    notes.append(f"server logs in {logs}")
    return rows, notes


def format_rows(rows: Sequence[PrefillRow]) -> str:
    """One line per length and load: each server's tok/s (seconds), ours / theirs, and the
    decoding streams' ITL meanwhile."""
    labels = list(dict.fromkeys(r.server for r in rows))
    head = "| prompt | streams | " + " | ".join(f"{label} tok/s (s)" for label in labels)
    head += " | ours / llama | streams' ITL p50/p95 ms, " + "; ".join(labels) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    keys = list(dict.fromkeys((r.length, r.streams) for r in rows))
    for length, streams in keys:
        found = {r.server: r for r in rows if (r.length, r.streams) == (length, streams)}
        cells = []
        for label in labels:
            r = found.get(label)
            cells.append(
                "-" if r is None else f"error: {r.error[:60]}" if r.error
                else f"{r.tokens_per_s:,.0f} ({r.seconds:.2f})"
            )  # fmt: skip
        ours = [r for r in found.values() if r.server.startswith("ours")]
        theirs = [r for r in found.values() if r.server.startswith("llama")]
        ratio = "-"
        if ours and theirs and not (ours[0].error or theirs[0].error):
            ratio = f"{ours[0].tokens_per_s / theirs[0].tokens_per_s:.2f}x"
        itl = "; ".join(
            f"{statistics.median(r.itl) * 1e3:.0f}/{percentile(r.itl, 95) * 1e3:.0f}"
            if r is not None and r.itl else "-"
            for r in (found.get(label) for label in labels)
        )  # fmt: skip
        lines.append(f"| {length} | {streams} | {' | '.join(cells)} | {ratio} | {itl} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.prefill", description=__doc__)
    parser.add_argument("--cpu-tier", default="native", choices=list(CPU_TIER_ENV))
    parser.add_argument(
        "--lengths", default=",".join(map(str, DEFAULT_LENGTHS)), help="prompt tokens"
    )
    parser.add_argument("--streams", type=int, default=DEFAULT_STREAMS)
    parser.add_argument("--llama-threads", type=int, default=None, help="llama-server -t")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lengths = [int(n) for n in args.lengths.split(",") if n]
    rows, notes = run(args.cpu_tier, lengths, args.streams, args.llama_threads)
    print(isa_line())
    print(f"\nPrefill, --cpu-tier {args.cpu_tier}: one cold prompt, 1 token generated "
          f"(/v1/completions), alone and with {args.streams} streams decoding:")  # fmt: skip
    print(format_rows(rows))
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
