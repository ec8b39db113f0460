"""Factories for the engine tests: requests, sequences, and driving an Engine to the end."""

from __future__ import annotations

import itertools

from inference.batch import Sequence
from inference.config import EngineConfig
from inference.engine.engine import Engine
from inference.types import GenerationError, GenerationEvent, Request, SamplingParams

_ids = itertools.count()

SMALL_LIMITS = EngineConfig(
    max_input_tokens=400,
    max_total_tokens=512,
    max_batch_prefill_tokens=64,
    max_batch_total_tokens=4096,
    max_batch_size=16,
)


def make_request(prompt: list[int] | int = 8, request_id: str | None = None, **params) -> Request:
    """A request with ``prompt`` token ids (or that many distinct ids) and sampling params."""
    if isinstance(prompt, int):
        prompt = [100 + i for i in range(prompt)]
    return Request(request_id or f"req-{next(_ids)}", list(prompt), SamplingParams(**params))


def make_sequence(prompt: list[int] | int = 8, **params) -> Sequence:
    return Sequence(make_request(prompt, **params))


def run_to_completion(engine: Engine, max_steps: int = 10_000) -> dict[str, list]:
    """Step until idle; every request's events (or its GenerationError) by request id."""
    results: dict[str, list] = {}
    for _ in range(max_steps):
        if not engine.has_work:
            return results
        for request_id, item in engine.step():
            results.setdefault(request_id, []).append(item)
    raise AssertionError("engine did not finish")


def token_ids(events: list[GenerationEvent | GenerationError]) -> list[int]:
    return [e.token.id for e in events if isinstance(e, GenerationEvent)]
