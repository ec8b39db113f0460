"""A streaming load generator for any OpenAI-compatible `/v1/chat/completions` server.

Each client sends one chat request with `stream: true` and records when each content chunk
arrived, so time to first token (TTFT) and inter-token latency (ITL) come from the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

PROMPTS = (
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a compiler turns source code into machine code.",
    "Describe the water cycle step by step for a school science class.",
    "Write a detailed travel guide for a week in Lisbon.",
    "Explain how neural networks learn, with an example.",
    "Write a long letter to a friend about learning to play the piano.",
    "Describe the history of the printing press and its effects on Europe.",
    "Give a thorough recipe for sourdough bread with tips for beginners.",
)


@dataclass
class StreamResult:
    """Timings of one streamed request (seconds, `time.perf_counter` based)."""

    started: float
    chunk_times: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ttft(self) -> float | None:
        return self.chunk_times[0] - self.started if self.chunk_times else None

    @property
    def inter_token(self) -> list[float]:
        times = self.chunk_times
        return [b - a for a, b in itertools.pairwise(times)]


async def stream_one(
    client: httpx.AsyncClient,
    base_url: str,
    model: str,
    prompt: str,
    max_tokens: int,
    extras: Mapping[str, Any] | None = None,
) -> StreamResult:
    """One streaming chat request; a content chunk counts as one token. `extras` are the
    server's own body fields (e.g. `ignore_eos`)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        **(extras or {}),
    }
    return await stream_body(client, base_url, body)


async def stream_body(
    client: httpx.AsyncClient, base_url: str, body: dict[str, Any]
) -> StreamResult:
    """One streamed `/v1/chat/completions` request with this body, timed per content chunk."""
    result = StreamResult(started=time.perf_counter())
    try:
        async with client.stream("POST", f"{base_url}/v1/chat/completions", json=body) as resp:
            if resp.status_code != 200:
                result.error = f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}"
                return result
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    result.error = str(event["error"])[:200]
                    break
                choices = event.get("choices") or []
                if choices and (choices[0].get("delta") or {}).get("content"):
                    result.chunk_times.append(time.perf_counter())
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


@dataclass
class LoadSummary:
    """Aggregate figures of one load run."""

    concurrency: int
    wall_s: float
    tokens: int
    errors: int
    ttft_p50: float
    ttft_p95: float
    itl_p50: float
    itl_p95: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarise(concurrency: int, wall_s: float, results: Sequence[StreamResult]) -> LoadSummary:
    ok = [r for r in results if r.error is None]
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    itls = [gap for r in ok for gap in r.inter_token]
    return LoadSummary(
        concurrency=concurrency,
        wall_s=wall_s,
        tokens=sum(len(r.chunk_times) for r in ok),
        errors=len(results) - len(ok),
        ttft_p50=percentile(ttfts, 50),
        ttft_p95=percentile(ttfts, 95),
        itl_p50=percentile(itls, 50),
        itl_p95=percentile(itls, 95),
    )


async def run_load(
    base_url: str,
    model: str,
    *,
    concurrency: int,
    max_tokens: int,
    prompts: Sequence[str] = PROMPTS,
    timeout_s: float = 600.0,
    extras: Mapping[str, Any] | None = None,
) -> tuple[LoadSummary, list[StreamResult]]:
    """Start `concurrency` streams at once and wait for all of them."""
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                stream_one(client, base_url, model, prompts[i % len(prompts)], max_tokens, extras)
                for i in range(concurrency)
            )
        )
        wall = time.perf_counter() - started
    return summarise(concurrency, wall, results), list(results)
