"""The client side of `bench.token_path`, run as its own process: `streams` streamed requests
at once to one route, each tagged with the `x-bench-stream` header, recording when every SSE
event arrived. Prints `{key: [perf_counter seconds, ...]}` as JSON on stdout.

Usage: ``python -m bench.token_path_client URL ROUTE STREAMS MAX_TOKENS TAG``
(ROUTE: `generate` for /generate_stream, `chat` for streaming /v1/chat/completions).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx

from bench.load import PROMPTS

ROUTES = {"generate": "/generate_stream", "chat": "/v1/chat/completions"}


def body(route: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    if route == "generate":
        return {"inputs": prompt, "parameters": {"max_new_tokens": max_tokens}}
    return {
        "model": "tgi",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }


async def one_stream(
    client: httpx.AsyncClient, url: str, route: str, key: str, prompt: str, max_tokens: int
) -> list[float]:
    """Arrival times of the stream's token events ([DONE] and errors not counted)."""
    times: list[float] = []
    headers = {"x-bench-stream": key}
    request = body(route, prompt, max_tokens)
    async with client.stream("POST", url + ROUTES[route], json=request, headers=headers) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            now = time.perf_counter()
            if line[5:].strip() == "[DONE]" or '"error"' in line[:20]:
                continue
            times.append(now)
    return times


async def run(url: str, route: str, streams: int, max_tokens: int, tag: str) -> dict:
    limits = httpx.Limits(max_connections=streams + 2)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        keys = [f"{tag}-{i}" for i in range(streams)]
        results = await asyncio.gather(
            *(
                one_stream(client, url, route, key, PROMPTS[i % len(PROMPTS)], max_tokens)
                for i, key in enumerate(keys)
            )
        )
    return dict(zip(keys, results, strict=True))


def main(argv: list[str]) -> int:
    url, route, streams, max_tokens, tag = argv
    print(json.dumps(asyncio.run(run(url, route, int(streams), int(max_tokens), tag))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
