"""Structured output under load: 32 streaming clients, half of them with a JSON schema, against
the same 32 clients with none; tok/s, ITL and the constrained/unconstrained ratio.

The schema asks for a long story in one string (`minLength`), so a constrained answer runs to
`max_tokens` like a free one and the two loads generate the same number of tokens: the ratio
measures what the grammar costs (masks, their application, the helper thread), not shorter
answers. Part of `make bench` (`python -m bench`); alone: ``.venv/bin/python -m
bench.structured`` starts this server on the bundled model and prints the row.

``--engine`` measures the same without HTTP, and robust to a busy machine: two engines over one
model, 32 decoding sequences each (one all free, one half constrained), stepped alternately, so
both see the same load at the same moments; the ratio of their median step times.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.load import PROMPTS, LoadSummary, StreamResult, stream_body, summarise
from bench.servers import RunningServer, our_server

STORY_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "story": {"type": "string", "minLength": 1200},
    },
    "required": ["title", "story"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "story", "schema": STORY_SCHEMA}}


@dataclass
class StructuredRow:
    """The two loads and their ratio."""

    mixed: LoadSummary  # half the clients constrained
    free: LoadSummary  # nobody constrained
    constrained_only: LoadSummary  # the constrained half of `mixed`
    free_only: LoadSummary  # the free half of `mixed`

    @property
    def ratio(self) -> float:
        return self.mixed.tokens_per_s / self.free.tokens_per_s if self.free.tokens_per_s else 0.0


async def run_clients(
    base_url: str, model: str, clients: int, max_tokens: int, constrained: int, tag: str
) -> tuple[float, list[StreamResult]]:
    """`clients` streams at once, the first `constrained` of them with the story schema."""
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients)
    bodies = []
    for i in range(clients):
        prompt = f"Request {tag}-{i}. {PROMPTS[i % len(PROMPTS)]}"
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
        }
        if i < constrained:
            body["response_format"] = RESPONSE_FORMAT
        bodies.append(body)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(stream_body(client, base_url, b) for b in bodies))
        wall = time.perf_counter() - started
    return wall, list(results)


def structured_row(
    server: RunningServer, model: str, clients: int = 32, max_tokens: int = 128
) -> StructuredRow:
    """The mixed load and the free load, alternated twice; the faster run of each counts."""
    half = clients // 2
    best: dict[str, tuple[float, list[StreamResult]]] = {}
    for attempt in range(2):
        for name, constrained in (("mixed", half), ("free", 0)):
            wall, results = asyncio.run(
                run_clients(
                    server.base_url, model, clients, max_tokens, constrained, f"{name}{attempt}"
                )
            )
            if errors := [r.error for r in results if r.error]:
                print(f"  structured ({name}): first error: {errors[0]}", file=sys.stderr)
            tokens = sum(len(r.chunk_times) for r in results)
            if (
                name not in best
                or tokens / wall > sum(len(r.chunk_times) for r in best[name][1]) / best[name][0]
            ):
                best[name] = (wall, results)
    mixed_wall, mixed = best["mixed"]
    free_wall, free = best["free"]
    return StructuredRow(
        mixed=summarise(clients, mixed_wall, mixed),
        free=summarise(clients, free_wall, free),
        constrained_only=summarise(half, mixed_wall, mixed[:half]),
        free_only=summarise(clients - half, mixed_wall, mixed[half:]),
    )


def format_row(row: StructuredRow) -> str:
    def line(label: str, s: LoadSummary) -> str:
        return (
            f"| {label:38s} | {s.concurrency:7d} | {s.tokens_per_s:5.0f} | "
            f"{s.itl_p50 * 1e3:10.0f} | {s.itl_p95 * 1e3:10.0f} | {s.errors:6d} |"
        )

    header = (
        "| load                                   | clients | tok/s | ITL p50 ms | ITL p95 ms "
        "| errors |\n|" + "-" * 40 + "|---------|-------|------------|------------|--------|"
    )
    return "\n".join(
        [
            header,
            line("unconstrained", row.free),
            line("half with a JSON schema", row.mixed),
            line("  of which: the constrained half", row.constrained_only),
            line("  of which: the free half", row.free_only),
            f"\nStructured output: constrained/unconstrained tok/s = {row.ratio:.2f} "
            "(target >= 0.8)",
        ]
    )


def engine_ratio(steps: int = 60, batch: int = 32) -> tuple[float, float]:
    """Median step time (s) of a free batch and of a half-constrained one, stepped in turn."""
    from inference.config import EngineConfig, ModelConfig
    from inference.engine.engine import Engine
    from inference.model.loader import load_model
    from inference.types import Request, SamplingParams, json_grammar

    loaded = load_model(ModelConfig())
    tokenizer = loaded.tokenizer
    engines = {"free": Engine(loaded, EngineConfig()), "mixed": Engine(loaded, EngineConfig())}
    for name, engine in engines.items():
        for i in range(batch):
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": f"Request {name}-{i}. {PROMPTS[i % len(PROMPTS)]}"}],
                add_generation_prompt=True,
                tokenize=False,
            )
            grammar = json_grammar(STORY_SCHEMA) if name == "mixed" and i < batch // 2 else None
            params = SamplingParams(max_new_tokens=steps + 40, ignore_eos=True, grammar=grammar)
            ids = tokenizer.encode(prompt, add_special_tokens=False)
            engine.add_request(Request(f"{name}-{i}", ids, params))
        while any(s.seq.is_prefilling for s in engine.states.values()):
            engine.step()  # prefill done: time decode steps only
    times: dict[str, list[float]] = {"free": [], "mixed": []}
    for _ in range(steps):
        for name, engine in engines.items():
            started = time.perf_counter()
            engine.step()
            times[name].append(time.perf_counter() - started)
    return tuple(sorted(times[k])[len(times[k]) // 2] for k in ("free", "mixed"))  # type: ignore[return-value]


def main() -> int:
    if "--engine" in sys.argv[1:]:
        free, mixed = engine_ratio()
        print(
            f"engine steps, 32 sequences decoding: free {free * 1e3:.1f} ms, half constrained "
            f"{mixed * 1e3:.1f} ms; constrained/unconstrained throughput = {free / mixed:.2f}"
        )
        return 0
    from inference.model.source import ensure_bundled_model

    ensure_bundled_model()
    spec = our_server("bundled")
    logs = Path(tempfile.mkdtemp(prefix="bench-structured-"))
    server = RunningServer(spec, logs / "server.log")
    try:
        server.wait_ready()
        asyncio.run(run_clients(server.base_url, spec.model_name, 32, 16, 16, "warmup"))
        row = structured_row(server, spec.model_name)
    finally:
        server.stop()
    print(format_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
