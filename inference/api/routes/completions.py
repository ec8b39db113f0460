"""`POST /v1/completions`: OpenAI's completions API, one prompt or several in one request.

Several prompts run side by side under one permit; their streams are interleaved as chunks
come and end with one `[DONE]`.
Must not import torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inference.api.errors import ApiError, IncompleteGeneration, ValidationFailed
from inference.api.generation import Generated, engine_events, generate_one
from inference.api.json_body import StrictJsonRoute
from inference.api.routes.common import (
    ERROR_RESPONSES,
    admit_validated,
    count_failure,
    generate_headers,
    record_success,
    run_holding_permit,
    stream_headers,
    validate,
)
from inference.api.routes.openai_common import (
    CompletionMeta,
    error_event,
    openai_finish_reason,
    response_model_name,
    sampling_parameters,
    stream_doc,
    usage_of,
)
from inference.api.schemas import (
    Chunk,
    CompletionComplete,
    CompletionFinal,
    CompletionRequest,
    Usage,
)
from inference.api.sse import DONE, EventStreamResponse
from inference.api.state import MAX_CLIENT_BATCH_SIZE, ServerState, get_state
from inference.api.validation import (
    CLIENT_BATCH_SIZE,
    EMPTY_PROMPT_LIST,
    N_CHOICES,
    SUFFIX,
    ValidRequest,
)
from inference.types import Permit

router = APIRouter(tags=["Text Generation Inference"], route_class=StrictJsonRoute)


async def prepare_completions(state: ServerState, body: CompletionRequest) -> list[ValidRequest]:
    if body.suffix is not None:
        raise ValidationFailed(SUFFIX)
    if body.n not in (None, 1):
        raise ValidationFailed(N_CHOICES)
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    if not prompts:
        raise ValidationFailed(EMPTY_PROMPT_LIST)
    if len(prompts) > MAX_CLIENT_BATCH_SIZE:
        raise ValidationFailed(CLIENT_BATCH_SIZE.format(MAX_CLIENT_BATCH_SIZE))
    params = sampling_parameters(
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=body.stop,
        frequency_penalty=body.frequency_penalty,
        repetition_penalty=body.repetition_penalty,
        ignore_eos=body.ignore_eos,
    )
    return [
        await validate(
            state, prompt, params, stream=body.stream, presence_penalty=body.presence_penalty
        )
        for prompt in prompts
    ]


@router.post(
    "/v1/completions",
    response_model=CompletionFinal,
    responses={**stream_doc("Chunk"), **ERROR_RESPONSES},
    summary="Complete a prompt (OpenAI compatible)",
    operation_id="completions",
)
async def completions(body: CompletionRequest, request: Request) -> Response:
    state = get_state(request)
    start = time.monotonic()
    permit, valids = await admit_validated(state, lambda: prepare_completions(state, body))
    model = response_model_name(state, body.model)
    meta = CompletionMeta(
        f"cmpl-{uuid.uuid4().hex}", int(time.time()), model, state.system_fingerprint
    )

    def make_chunk(choice: CompletionComplete, usage: Usage | None = None) -> bytes:
        return meta.chunk(Chunk, [choice], usage)

    if body.stream:
        streams = [
            completion_events(state, valid, permit, index, start, make_chunk)
            for index, valid in enumerate(valids)
        ]
        return EventStreamResponse(
            merged_then_done(streams, permit),
            keepalive_interval=state.keepalive_interval,
            headers=stream_headers(state, "".join(v.inputs for v in valids)),
        )
    engine = state.attached
    work = asyncio.gather(*(generate_one(engine, v, permit) for v in valids))
    sequences = await run_holding_permit(state, request, permit, work)
    choices, prompt_tokens, completion_tokens = [], 0, 0
    for index, (valid, sequence) in enumerate(zip(valids, sequences, strict=True)):
        timings = record_success(state, start, sequence)
        usage = usage_of(sequence, valid)
        prompt_tokens += usage.prompt_tokens
        completion_tokens += usage.completion_tokens
        choices.append(
            CompletionComplete(
                index=index,
                text=sequence.text,
                logprobs=None,
                finish_reason=openai_finish_reason(sequence.finish_reason),
            )
        )
    final = CompletionFinal(
        **meta.fields(),
        choices=choices,
        usage=Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
    )
    headers = generate_headers(state, valids[0].inputs, timings, sequences[0])
    headers["x-prompt-tokens"] = str(prompt_tokens)
    headers["x-generated-tokens"] = str(completion_tokens)
    return JSONResponse(final.model_dump(mode="json"), headers=headers)


async def completion_events(
    state: ServerState,
    valid: ValidRequest,
    permit: Permit,
    index: int,
    start: float,
    make_chunk: Callable[..., bytes],
) -> AsyncIterator[bytes]:
    """One prompt's chunks; the last one carries the finish reason and usage (as TGI)."""
    sequence = Generated(input_length=valid.input_length)
    try:
        async for event in engine_events(state.attached, valid, permit):
            sequence.add(event)
            text = "" if event.token.special else event.text
            if not event.is_final:
                yield make_chunk(CompletionComplete(index=index, text=text, finish_reason=None))
                continue
            record_success(state, start, sequence)
            choice = CompletionComplete(
                index=index, text=text, finish_reason=openai_finish_reason(sequence.finish_reason)
            )
            yield make_chunk(choice, usage_of(sequence, valid))
            return
        raise IncompleteGeneration()
    except ApiError as error:
        count_failure(state, error)
        yield error_event(error)


async def merged_then_done(
    streams: list[AsyncIterator[bytes]], permit: Permit
) -> AsyncIterator[bytes]:
    """Interleave several prompts' chunks as they come, then `[DONE]`."""
    try:
        if len(streams) == 1:
            async for item in streams[0]:
                yield item
        else:
            async for item in _merge(streams):
                yield item
    finally:
        permit.release()
        for stream in streams:
            with contextlib.suppress(BaseException):
                await stream.aclose()  # type: ignore[attr-defined]
    yield DONE


async def _merge(streams: list[AsyncIterator[bytes]]) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def pump(stream: AsyncIterator[bytes]) -> None:
        try:
            async for item in stream:
                await queue.put(item)
        finally:
            await queue.put(None)

    tasks = [asyncio.ensure_future(pump(s)) for s in streams]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
