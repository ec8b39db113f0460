"""Speculative decoding (`--speculate N`, n-gram drafts) against plain decoding.

Two servers on the bundled model, one plain and one with `--speculate N`, both up at once and
measured alternately on the same loads: a quoting workload (fix this paragraph, edit this code:
the answer repeats much of the prompt, so drafts from the prompt are accepted) and the distinct
prompts of `python -m bench` (little to quote), each at 1 and 32 clients. Requests are
greedy, non-streaming `/v1/chat/completions`; tokens/s is the answers' `completion_tokens`
over the wall time. The speculating server's `/metrics` counters give the drafts proposed
and accepted during each run. Part of `make bench` (`python -m bench`, bundled size, unless
`--speculate 0`); alone: ``.venv/bin/python -m bench.speculative``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import PROMPTS
from bench.servers import RunningServer, our_server

DEFAULT_SPECULATE = 4
DEFAULT_LEVELS = (1, 32)
REQUESTS_AT_ONE_CLIENT = 4  # sequential requests of a one-client run

PARAGRAPHS = (
    "The lighthouse keper climbed the stairs every evning to light the lamp. He new every "
    "step by heart, and he counted them outloud as the wind beat against the windows. When "
    "the light was burning he sat down with his notebok and wrote what the sea had done "
    "that day.",
    "Our team recieved the new servers on monday. We instaled the operating system, "
    "configured the network and ran the tests overnight. Two of the disks failed the check, "
    "so we have ordred replacements and expect them by the end of the weak.",
    "Bread needs only flour, water, salt and time. Mix the flour and water, let them rest for "
    "an hour, then add the salt and fold the dough every half hour. Shape it in the evening, "
    "keep it cold overnigth and bake it in a very hot oven in the morning.",
)
CODE = (
    "def mean(values):\n    total = 0\n    for v in values:\n        total = total + v\n"
    "    return total / len(values)\n\n\ndef variance(values):\n    m = mean(values)\n"
    "    total = 0\n    for v in values:\n        total = total + (v - m) ** 2\n"
    "    return total / len(values)\n"
)


def quoting_prompts(count: int, tag: str) -> list[str]:
    """Edit-this-text requests whose answer is mostly the text itself, each with its own first
    line (no answer comes from a cached prompt)."""
    tasks = [
        f"Correct the spelling mistakes in this paragraph. Reply with the whole corrected "
        f"paragraph and nothing else.\n\n{p}"
        for p in PARAGRAPHS
    ]
    tasks.append(
        "Add type hints to this Python code. Reply with the whole code and nothing else."
        f"\n\n```python\n{CODE}```"
    )
    return [f"Request {tag}-{i}. {tasks[i % len(tasks)]}" for i in range(count)]


def distinct_prompts(count: int, tag: str) -> list[str]:
    return [f"Request {tag}-{i}. {PROMPTS[i % len(PROMPTS)]}" for i in range(count)]


WORKLOADS = {"quoting": quoting_prompts, "distinct": distinct_prompts}


@dataclass
class Run:
    """One load on one server."""

    tokens: int
    wall_s: float
    errors: int
    proposed: int = 0
    accepted: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s else 0.0


@dataclass
class SpecRow:
    workload: str
    clients: int
    plain: Run
    speculative: Run

    @property
    def ratio(self) -> float:
        plain = self.plain.tokens_per_s
        return self.speculative.tokens_per_s / plain if plain else 0.0


async def _complete(client: httpx.AsyncClient, base_url: str, prompt: str, max_tokens: int):
    body = {
        "model": "tgi",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    response = await client.post(f"{base_url}/v1/chat/completions", json=body)
    response.raise_for_status()
    return response.json()["usage"]["completion_tokens"]


async def run_load(base_url: str, prompts: list[str], clients: int, max_tokens: int) -> Run:
    """`prompts` answered by `clients` concurrent clients, each taking the next one left."""
    queue = list(reversed(prompts))
    counts: list[int] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=900, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            while queue:
                prompt = queue.pop()
                try:
                    counts.append(await _complete(client, base_url, prompt, max_tokens))
                except (httpx.HTTPError, KeyError, ValueError):
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    return Run(sum(counts), wall, errors)


def draft_counters(server: RunningServer) -> tuple[int, int]:
    """(proposed, accepted) draft tokens so far, from the server's `/metrics`."""
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("speculative_draft_tokens", "speculative_accepted_tokens"):
            values[name] = int(float(value))
    return values.get("speculative_draft_tokens", 0), values.get("speculative_accepted_tokens", 0)


def measure(server: RunningServer, prompts: list[str], clients: int, max_tokens: int) -> Run:
    before = draft_counters(server)
    run = asyncio.run(run_load(server.base_url, prompts, clients, max_tokens))
    after = draft_counters(server)
    run.proposed, run.accepted = after[0] - before[0], after[1] - before[1]
    return run


def speculative_rows(
    max_tokens: int = 128,
    speculate: int = DEFAULT_SPECULATE,
    levels: tuple[int, ...] = DEFAULT_LEVELS,
    model_id: str = "bundled",
) -> list[SpecRow]:
    """Both servers up at once, every (workload, clients) load run on each in turn."""
    logs = Path(tempfile.mkdtemp(prefix="bench-speculative-"))
    plain = RunningServer(our_server(model_id), logs / "plain.log")
    spec = RunningServer(our_server(model_id, speculate=speculate), logs / "speculate.log")
    rows: list[SpecRow] = []
    try:
        for server in (plain, spec):
            server.wait_ready()
            measure(server, quoting_prompts(max(levels), "warmup"), max(levels), 16)
        for workload, prompts_for in WORKLOADS.items():
            for clients in levels:
                count = REQUESTS_AT_ONE_CLIENT if clients == 1 else clients
                runs = []
                for server in (plain, spec):
                    prompts = prompts_for(count, f"{time.time_ns()}")
                    runs.append(measure(server, prompts, clients, max_tokens))
                rows.append(SpecRow(workload, clients, *runs))
                print(f"  speculative: {workload} at {clients} clients done", file=sys.stderr)
    finally:
        plain.stop()
        spec.stop()
    return rows


def format_rows(rows: list[SpecRow], speculate: int, max_tokens: int) -> str:
    lines = [
        f"Speculative decoding: plain vs --speculate {speculate} (n-gram drafts), greedy, "
        f"{max_tokens} new tokens at most",
        f"{'workload':<10} {'clients':>7} {'plain tok/s':>12} {'spec tok/s':>11} {'ratio':>6} "
        f"{'accepted/proposed':>18}",
    ]
    for row in rows:
        s = row.speculative
        rate = f"{s.accepted}/{s.proposed}" if s.proposed else "-"
        errors = row.plain.errors + s.errors
        lines.append(
            f"{row.workload:<10} {row.clients:>7} {row.plain.tokens_per_s:>12.1f} "
            f"{s.tokens_per_s:>11.1f} {row.ratio:>5.2f}x {rate:>18}"
            + (f"  ({errors} errors)" if errors else "")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speculative", description=__doc__)
    parser.add_argument("--speculate", type=int, default=DEFAULT_SPECULATE)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--concurrency", default=",".join(map(str, DEFAULT_LEVELS)))
    args = parser.parse_args(argv)
    from inference.model.source import ensure_bundled_model

    ensure_bundled_model()
    levels = tuple(int(c) for c in args.concurrency.split(",") if c)
    rows = speculative_rows(args.max_tokens, args.speculate, levels)
    print(format_rows(rows, args.speculate, args.max_tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())
