"""TGI's native generation routes: `POST /generate`, `POST /generate_stream`, `POST /`.

Must not import torch.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inference.api.contract import event_stream
from inference.api.errors import ApiError, IncompleteGeneration
from inference.api.generation import Generated, engine_events, generate_best_of
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
from inference.api.schemas import (
    BestOfSequence,
    CompatGenerateRequest,
    Details,
    GenerateRequest,
    GenerateResponse,
    PrefillToken,
    StreamDetails,
    StreamResponse,
    Token,
)
from inference.api.sse import EventStreamResponse, frame
from inference.api.state import ServerState, get_state
from inference.api.stream_frames import tgi_token_frame
from inference.api.validation import ValidRequest
from inference.types import Permit, TokenInfo

router = APIRouter(tags=["Text Generation Inference"], route_class=StrictJsonRoute)

STREAM_EVENTS = event_stream("StreamResponse", "ErrorResponse")
STREAM_DOC = {
    200: {
        "description": "Generated Text: one event per token, the last with the text and "
        "details; an `ErrorResponse` event if generation fails on the way",
        "content": {"text/event-stream": STREAM_EVENTS},
    }
}


def to_token(token: TokenInfo) -> Token:
    return Token(id=token.id, text=token.text, logprob=token.logprob, special=token.special)


def to_prefill(token: TokenInfo) -> PrefillToken:
    return PrefillToken(id=token.id, text=token.text, logprob=token.logprob)


def build_details(valid: ValidRequest, best: Generated, others: list[Generated]) -> Details:
    def top(seq: Generated) -> list[list[Token]]:
        if not valid.params.top_n_tokens:
            return []
        return [[to_token(t) for t in step] for step in seq.top_tokens]

    def prefill(seq: Generated) -> list[PrefillToken]:
        return [to_prefill(t) for t in seq.prefill] if valid.decoder_input_details else []

    best_of_sequences = None
    if valid.best_of > 1:
        best_of_sequences = [
            BestOfSequence(
                generated_text=full_text(valid, seq),
                finish_reason=seq.finish_reason.value,
                generated_tokens=seq.generated_tokens,
                seed=seq.seed,
                prefill=prefill(seq),
                tokens=[to_token(t) for t in seq.tokens],
                top_tokens=top(seq),
            )
            for seq in others
        ]
    return Details(
        finish_reason=best.finish_reason.value,
        generated_tokens=best.generated_tokens,
        seed=best.seed,
        prefill=prefill(best),
        tokens=[to_token(t) for t in best.tokens],
        top_tokens=top(best),
        best_of_sequences=best_of_sequences,
    )


def full_text(valid: ValidRequest, sequence: Generated) -> str:
    return valid.inputs + sequence.text if valid.return_full_text else sequence.text


async def run_generate(
    state: ServerState, request: Request, body: GenerateRequest, start: float
) -> tuple[GenerateResponse, dict[str, str]]:
    """Validate, generate (best_of aware) and account for one non-streaming request."""
    permit, valid = await admit_validated(
        state, lambda: validate(state, body.inputs, body.parameters)
    )
    work = generate_best_of(state.attached, valid, permit)
    best, others = await run_holding_permit(state, request, permit, work)
    timings = record_success(state, start, best)
    details = build_details(valid, best, others) if valid.details else None
    response = GenerateResponse(generated_text=full_text(valid, best), details=details)
    return response, generate_headers(state, body.inputs, timings, best)


async def open_stream(
    state: ServerState, body: GenerateRequest, start: float
) -> EventStreamResponse:
    """Admit and validate now (errors keep their HTTP status), then stream TGI events."""
    permit, valid = await admit_validated(
        state, lambda: validate(state, body.inputs, body.parameters, stream=True)
    )
    return EventStreamResponse(
        tgi_events(state, valid, start, permit),
        keepalive_interval=state.keepalive_interval,
        headers=stream_headers(state, body.inputs),
    )


async def tgi_events(
    state: ServerState, valid: ValidRequest, start: float, permit: Permit
) -> AsyncIterator[bytes]:
    """One `StreamResponse` per token; the last carries the text and details."""
    sequence = Generated(input_length=valid.input_length)
    index = 0
    try:
        async for event in engine_events(state.attached, valid, permit):
            index += 1
            sequence.add(event)
            if not event.is_final:
                yield tgi_token_frame(index, sequence.tokens[-1], event.top_tokens)
                continue
            token = to_token(sequence.tokens[-1])
            top_tokens = [to_token(t) for t in event.top_tokens]
            seed = sequence.seed if valid.params.do_sample else None
            # NOTE: sent whether or not `details` was asked: the stream's reader learns why it
            # ended without a second request (TGI sends null here unless asked).
            details = StreamDetails(
                finish_reason=sequence.finish_reason.value,
                generated_tokens=sequence.generated_tokens,
                seed=seed,
                input_length=sequence.input_length or valid.input_length,
            )
            record_success(state, start, sequence)
            yield frame(
                StreamResponse(
                    index=index,
                    token=token,
                    top_tokens=top_tokens,
                    generated_text=full_text(valid, sequence),
                    details=details,
                ).model_dump_json()
            )
            return
        raise IncompleteGeneration()
    except ApiError as error:
        count_failure(state, error)
        yield frame(json.dumps(error.payload()))
    finally:
        permit.release()


@router.post(
    "/generate",
    response_model=GenerateResponse,
    responses=ERROR_RESPONSES,
    summary="Generate tokens",
    operation_id="generate",
)
async def generate(body: GenerateRequest, request: Request) -> Response:
    start = time.monotonic()
    response, headers = await run_generate(get_state(request), request, body, start)
    return JSONResponse(response.model_dump(mode="json"), headers=headers)


@router.post(
    "/generate_stream",
    response_class=EventStreamResponse,
    responses={**STREAM_DOC, **ERROR_RESPONSES},
    summary="Generate a stream of token using Server-Sent Events",
    operation_id="generate_stream",
)
async def generate_stream(body: GenerateRequest, request: Request) -> Response:
    return await open_stream(get_state(request), body, time.monotonic())


@router.post(
    "/",
    responses={
        200: {
            "description": "Generated Text",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/GenerateResponse"},
                    }
                },
                "text/event-stream": STREAM_EVENTS,
            },
        },
        **ERROR_RESPONSES,
    },
    summary="Generate tokens if `stream == false` or a stream of token if `stream == true`",
    operation_id="compat_generate",
)
async def compat_generate(body: CompatGenerateRequest, request: Request) -> Response:
    state = get_state(request)
    start = time.monotonic()
    if body.stream:
        return await open_stream(state, body, start)
    response, headers = await run_generate(state, request, body, start)
    return JSONResponse([response.model_dump(mode="json")], headers=headers)
