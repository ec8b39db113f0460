"""`python -m bench.token_path`: where a streamed token's time goes, from the engine's step
to the client's socket, on the bundled model at 1 and 8 streams.

One process serves, as `python -m inference` does (the AsyncEngine's thread behind the app on
uvicorn), with `bench.token_probe` stamping each token on its way; the client is a second
process (`bench.token_path_client`). Rows, per token, p50 over every token but each stream's
first (its prefill):
- engine step alone: `Engine.step()` driven directly, no thread, no event loop;
- AsyncEngine: the same engine behind its thread, consumed in-process, no HTTP;
- `/generate_stream` and streaming `/v1/chat/completions` over loopback HTTP.
Columns: the inter-token latency the consumer sees, the step as timed inside that run, the
output processing (detokenisation, stop checks) inside the step, the hand-off (step end to
the event on the loop), the framing (event on the loop to its SSE bytes handed to the server),
the socket (bytes handed over to bytes read by the client), and ITL over the step alone.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from bench.engine_step import measure_decode
from bench.load import PROMPTS
from bench.processes import VENV_BIN, free_port
from bench.token_probe import Probe, SendStamps, StreamLog
from inference.cli import engine_config_for, parse_args
from inference.config import ModelConfig
from inference.cpu import physical_cpu_count, release_idle_openmp_pools
from inference.engine.async_engine import AsyncEngine
from inference.engine.engine import Engine
from inference.model.loader import load_model
from inference.types import Request, SamplingParams

ROUTE_LABELS = {"generate": "HTTP /generate_stream", "chat": "HTTP /v1/chat/completions"}
STEP_ALONE = "engine step alone"
ASYNC_ENGINE = "AsyncEngine (no HTTP)"
STAGES = ("itl", "step", "output", "handoff", "framing", "socket")


@dataclass
class PathRow:
    """One path at one concurrency: p50 seconds per token of each stage (nan: not measured)."""

    label: str
    clients: int
    itl: float
    step: float
    output: float = float("nan")
    handoff: float = float("nan")
    framing: float = float("nan")
    socket: float = float("nan")
    tokens: int = 0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def step_alone(engine: Engine, clients: int, steps: int) -> PathRow:
    """Decode steps of `clients` sequences, the engine driven directly (bench.engine_step)."""
    times = measure_decode(engine, clients, steps, prompt_len=32)
    step = median(times) / 1e3
    return PathRow(STEP_ALONE, clients, itl=step, step=step, tokens=clients * steps)


def path_row(label: str, clients: int, logs: list[StreamLog], recv: list[list[float]]) -> PathRow:
    """The stage medians of `logs` (`recv`: the client's arrival times, [] when in-process)."""
    itl, step, output, handoff, framing, socket = [], [], [], [], [], []
    for i, log in enumerate(logs):
        arrivals = recv[i] if recv else [t.loop_at for t in log.tokens]
        itl += [b - a for a, b in itertools.pairwise(arrivals)]
        for k, stamp in enumerate(log.tokens[1:], start=1):
            step.append(stamp.step_end - stamp.step_start)
            output.append(stamp.process_s)
            handoff.append(stamp.loop_at - stamp.step_end)
            if k < len(log.sent_at):
                framing.append(log.sent_at[k] - stamp.loop_at)
                if recv and k < len(recv[i]):
                    socket.append(recv[i][k] - log.sent_at[k])
    return PathRow(
        label,
        clients,
        itl=median(itl),
        step=median(step),
        output=median(output),
        handoff=median(handoff),
        framing=median(framing),
        socket=median(socket),
        tokens=len(itl),
    )


async def async_engine_run(
    async_engine, probe: Probe, clients: int, max_tokens: int, tag: str
) -> PathRow:
    """`clients` streams consumed on this loop straight from `AsyncEngine.generate`."""
    tokenizer = async_engine.tokenizer

    async def consume(i: int) -> StreamLog:
        key = f"{tag}-{i}"
        probe.consume(key)
        prompt = tokenizer.encode(PROMPTS[i % len(PROMPTS)])
        params = SamplingParams(max_new_tokens=max_tokens, ignore_eos=True)
        async for _ in async_engine.generate(Request(key, prompt, params)):
            pass
        return probe.streams[key]

    logs = await asyncio.gather(*(asyncio.create_task(consume(i)) for i in range(clients)))
    return path_row(ASYNC_ENGINE, clients, list(logs), [])


async def http_run(
    url: str, probe: Probe, route: str, clients: int, max_tokens: int, tag: str
) -> PathRow:
    """`clients` streams of `route` read by a client process."""
    proc = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "python"),
        "-m",
        "bench.token_path_client",
        url,
        route,
        str(clients),
        str(max_tokens),
        tag,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the bench client failed ({route}, {clients} streams)")
    received: dict[str, list[float]] = json.loads(out)
    keys = list(received)
    logs = [probe.streams[k] for k in keys]
    return path_row(ROUTE_LABELS[route], clients, logs, [received[k] for k in keys])


async def served_rows(
    async_engine: AsyncEngine, levels: list[int], max_tokens: int, rounds: int
) -> list[PathRow]:
    """The AsyncEngine and both HTTP routes at each level, `rounds` times, paths alternated."""
    import uvicorn

    from inference.api.app import create_app

    probe = Probe(async_engine)
    port = free_port()
    app = SendStamps(create_app(async_engine), probe)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve())
    while not async_engine.is_ready:
        if serving.done():
            raise RuntimeError("the server stopped before the engine was ready")
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    rows: list[PathRow] = []
    try:
        await http_run(url, probe, "chat", max(levels), 8, "warmup")
        for r in range(rounds):
            for clients in levels:
                tag = f"r{r}c{clients}"
                rows.append(await async_engine_run(async_engine, probe, clients, max_tokens, tag))
                for route in ROUTE_LABELS:
                    run = await http_run(url, probe, route, clients, max_tokens, f"{tag}{route}")
                    rows.append(run)
    finally:
        server.should_exit = True
        await serving
    return rows


def merge(rows: list[PathRow]) -> list[PathRow]:
    """One row per (path, clients): the median of its rounds."""
    groups: dict[tuple[int, str], list[PathRow]] = {}
    for row in rows:
        groups.setdefault((row.clients, row.label), []).append(row)
    order = [STEP_ALONE, ASYNC_ENGINE, *ROUTE_LABELS.values()]
    merged = []
    for (clients, label), group in sorted(
        groups.items(), key=lambda g: (g[0][0], order.index(g[0][1]))
    ):
        fields = ("itl", "step", "output", "handoff", "framing", "socket")
        values = {
            f: median([getattr(r, f) for r in group if getattr(r, f) == getattr(r, f)])
            for f in fields
        }
        merged.append(PathRow(label, clients, **values, tokens=sum(r.tokens for r in group)))
    return merged


def ms(seconds: float, digits: int = 2) -> str:
    return "-" if seconds != seconds else f"{seconds * 1e3:.{digits}f}"


def format_rows(rows: list[PathRow]) -> str:
    """The breakdown table; the last column is ITL over the step alone at the same level."""
    alone = {r.clients: r.step for r in rows if r.label == STEP_ALONE}
    header = (
        f"| {'path':<27} | clients | ITL p50 ms | step ms | output ms | hand-off ms "
        "| framing ms | socket ms | ITL / step alone |"
    )
    lines = [header, "|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|"]
    for r in rows:
        ratio = r.itl / alone[r.clients] if r.clients in alone else float("nan")
        lines.append(
            f"| {r.label:<27} | {r.clients:>7} | {ms(r.itl):>10} | {ms(r.step):>7} "
            f"| {ms(r.output, 3):>9} | {ms(r.handoff, 3):>11} | {ms(r.framing, 3):>10} "
            f"| {ms(r.socket, 3):>9} | {ratio:>15.2f}x |"
        )
    return "\n".join(lines)


def measure(levels: list[int], max_tokens: int, steps: int, rounds: int) -> list[PathRow]:
    """Every row: the step alone first (no other thread), then the served paths."""
    torch.set_num_threads(physical_cpu_count())
    loaded = load_model(ModelConfig())
    _, args = parse_args([])
    async_engine = AsyncEngine(loaded, engine_config_for(args, loaded.max_position_embeddings))
    async_engine.engine.warmup()
    rows = [step_alone(async_engine.engine, clients, steps) for clients in levels]
    release_idle_openmp_pools()  # the engine thread's pool must be the only one
    rows += asyncio.run(served_rows(async_engine, levels, max_tokens, rounds))
    return merge(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.token_path", description=__doc__)
    parser.add_argument("--concurrency", default="1,8", help="comma-separated stream counts")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per stream")
    parser.add_argument("--steps", type=int, default=60, help="steps of the step-alone rows")
    parser.add_argument("--rounds", type=int, default=2, help="served runs per path, alternated")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c]
    started = time.perf_counter()
    rows = measure(levels, args.max_tokens, args.steps, args.rounds)
    print(f"\nToken path, bundled model, {args.max_tokens} new tokens per stream, greedy:")
    print(format_rows(rows))
    print(f"(token path measured in {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
