"""Drive one validated request through the engine and gather what the response needs.

Turns engine failures into API errors (429, 424, 500), assembles text and details, runs
`best_of` as several sampled sequences, and times each phase. Routes format the result;
this module knows nothing of JSON or HTTP. Must not import torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from inference.api.errors import (
    ApiError,
    GenerationFailed,
    IncompleteGeneration,
    Overloaded,
)
from inference.api.validation import ValidRequest
from inference.metrics import RequestTimings
from inference.types import (
    EngineClient,
    EngineOverloadedError,
    FinishReason,
    GenerationError,
    GenerationEvent,
    Permit,
    Request,
    TokenInfo,
    distinct_seeds,
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def engine_request(valid: ValidRequest) -> Request:
    return Request(
        request_id=new_request_id(),
        prompt_token_ids=list(valid.prompt_token_ids),
        params=valid.params,
    )


def wire_token(event: GenerationEvent) -> TokenInfo:
    """The token as clients see it: its UTF-8-safe text, or its spelling when special.

    NOTE: concatenating the `text` of every non-special token gives `generated_text`, which
    is what streaming clients (InferenceClient, Gradio) rely on.
    """
    token = event.token
    text = token.text if token.special else event.text
    return TokenInfo(id=token.id, text=text, logprob=token.logprob, special=token.special)


def as_api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, EngineOverloadedError):
        return Overloaded()
    if isinstance(exc, GenerationError):
        return GenerationFailed(str(exc))
    return GenerationFailed(f"{type(exc).__name__}: {exc}")


async def engine_events(
    engine: EngineClient, valid: ValidRequest, permit: Permit
) -> AsyncIterator[GenerationEvent]:
    """The engine's events for one request admitted with `permit`, errors as `ApiError`;
    closing it aborts the request."""
    try:
        events = engine.generate(engine_request(valid), permit)
    except Exception as exc:
        raise as_api_error(exc) from exc
    try:
        while True:
            try:
                event = await anext(events)
            except StopAsyncIteration:
                return
            except Exception as exc:
                raise as_api_error(exc) from exc
            yield event
            if event.is_final:
                return
    finally:
        await events.aclose()


@dataclass
class Generated:
    """One generated sequence, built event by event, with everything `Details` can report."""

    text: str = ""
    tokens: list[TokenInfo] = field(default_factory=list)
    top_tokens: list[list[TokenInfo]] = field(default_factory=list)
    prefill: list[TokenInfo] = field(default_factory=list)
    finish_reason: FinishReason = FinishReason.LENGTH
    generated_tokens: int = 0
    seed: int | None = None
    input_length: int = 0
    queued_at: float = 0.0
    first_scheduled_at: float = 0.0
    finished_at: float = 0.0

    @property
    def logprob_sum(self) -> float:
        return sum(t.logprob for t in self.tokens if t.logprob is not None)

    def add(self, event: GenerationEvent) -> None:
        token = wire_token(event)
        self.tokens.append(token)
        self.top_tokens.append(list(event.top_tokens))
        if not token.special:
            self.text += event.text
        if event.prefill is not None:
            self.prefill = list(event.prefill)
        if event.is_final:
            self.finish(event)

    def finish(self, event: GenerationEvent) -> None:
        self.finish_reason = FinishReason(event.finish_reason)
        self.generated_tokens = event.num_generated_tokens or len(self.tokens)
        self.seed = event.seed
        self.input_length = event.num_prompt_tokens
        self.queued_at = event.queued_at
        self.first_scheduled_at = event.first_scheduled_at
        self.finished_at = event.finished_at or time.monotonic()


async def generate_one(engine: EngineClient, valid: ValidRequest, permit: Permit) -> Generated:
    """Run one sequence to its end."""
    sequence = Generated(input_length=valid.input_length)
    async for event in engine_events(engine, valid, permit):
        sequence.add(event)
        if event.is_final:
            if not valid.params.do_sample:
                sequence.seed = None  # TGI reports a seed only when sampling
            if not sequence.input_length:
                sequence.input_length = valid.input_length
            return sequence
    raise IncompleteGeneration()


async def generate_best_of(
    engine: EngineClient, valid: ValidRequest, permit: Permit
) -> tuple[Generated, list[Generated]]:
    """`best_of` sampled sequences with distinct seeds, all under one `permit`; the best by
    total logprob first."""
    if valid.best_of <= 1:
        return await generate_one(engine, valid, permit), []
    seeds = distinct_seeds(valid.best_of)
    tasks = [asyncio.ensure_future(generate_one(engine, valid.with_seed(s), permit)) for s in seeds]
    try:
        sequences = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
    ranked = sorted(sequences, key=lambda s: s.logprob_sum, reverse=True)
    return ranked[0], ranked[1:]


def timings_of(start: float, sequence: Generated, now: float | None = None) -> RequestTimings:
    """Phase durations in seconds from the monotonic stamps (clamped: stamps may be unset)."""
    now = time.monotonic() if now is None else now
    queued = sequence.queued_at or start
    scheduled = sequence.first_scheduled_at or queued
    total = max(now - start, 0.0)
    inference = max(now - scheduled, 0.0)
    return RequestTimings(
        total=total,
        validation=max(queued - start, 0.0),
        queue=max(scheduled - queued, 0.0),
        inference=inference,
        time_per_token=inference / max(sequence.generated_tokens, 1),
    )
