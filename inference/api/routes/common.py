"""Pieces every generation route shares: documented error responses, headers, accounting.

Must not import torch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request

from inference.api.errors import ApiError, ClientDisconnected
from inference.api.generation import Generated, timings_of
from inference.api.state import ServerState
from inference.api.validation import ValidRequest
from inference.metrics import RequestTimings
from inference.types import Permit

# NOTE: the content type is spelled out: FastAPI would give a streaming route's errors the
# route's own `text/event-stream`, but errors before the first event are JSON documents.
JSON_ERROR: dict[str, Any] = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
}
ERROR_DESCRIPTIONS: dict[int, str] = {
    413: "Payload too large: the body is over the server's `--payload-limit` (2 MB by default)",
    422: "Input validation error: a malformed body (not JSON, a wrong type, NaN or an "
    "infinity), a value out of the documented range, or a prompt over the token limits "
    "(`max_input_tokens`, `max_total_tokens` in `/info`), which depend on the tokenizer",
    424: "Generation Error",
    429: "Model is overloaded: `max_concurrent_requests` are in flight",
    500: "Incomplete generation",
    503: "Model is loading (or failed to load)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers for `statuses`, each an `ErrorResponse` JSON document."""
    return {
        status: {"description": ERROR_DESCRIPTIONS[status], **JSON_ERROR} for status in statuses
    }


ERROR_RESPONSES = error_responses(413, 422, 424, 429, 500, 503)

logger = logging.getLogger(__name__)
T = TypeVar("T")

# TGI's `tgi_request_failure{err=...}` labels, by our `error_type`.
FAILURE_LABELS = {
    "validation": "validation",
    "template_error": "validation",
    "overloaded": "overloaded",
    "generation": "generation",
    "incomplete_generation": "incomplete",
    "unhealthy": "unhealthy",
}


def count_failure(state: ServerState, error: ApiError) -> None:
    """Count it under TGI's label; log the ones that are the server's problem, not the client's."""
    state.metrics.count_failure(FAILURE_LABELS.get(error.error_type, error.error_type))
    if error.status_code >= 500 or error.error_type == "generation":
        logger.warning("Request failed (%s): %s", error.error_type, error.message)


async def admit_validated(
    state: ServerState, prepare: Callable[[], Awaitable[T]]
) -> tuple[Permit, T]:
    """Take a concurrency permit, then validate: a refused request gives its permit back and
    is counted as a failure, so a stream's permit is only held by a request that will run."""
    permit = state.admit()
    try:
        return permit, await prepare()
    except BaseException as error:
        permit.release()
        if isinstance(error, ApiError):
            count_failure(state, error)
        raise


async def run_holding_permit(
    state: ServerState, request: Request, permit: Permit, work: Awaitable[T]
) -> T:
    """The rest of a request that answers in one document: await `work` unless the client hangs
    up, count a failure, and give the permit back whatever happens."""
    try:
        return await unless_disconnected(request, work)
    except ApiError as error:
        count_failure(state, error)
        raise
    finally:
        permit.release()


async def off_loop(work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run CPU-bound request work (tokenising, chat templates, big JSON) in a worker thread.

    NOTE: the tokenizer releases the GIL, so a 2 MB prompt takes a second of a worker's time
    while the event loop keeps serving every other stream and `/health`.
    """
    return await asyncio.to_thread(work, *args, **kwargs)


async def validate(state: ServerState, inputs: str, parameters: Any, **kwargs: Any) -> ValidRequest:
    """Validate with the server's limits, off the event loop, and record the input size
    (callers count failures)."""
    assert state.validator is not None
    valid = await off_loop(state.validator.validate, inputs, parameters, **kwargs)
    state.metrics.observe_input(valid.input_length, valid.params.max_new_tokens)
    return valid


def record_success(state: ServerState, start: float, sequence: Generated) -> RequestTimings:
    timings = timings_of(start, sequence)
    state.metrics.observe_success(timings, sequence.generated_tokens)
    return timings


def _ms(seconds: float) -> str:
    return str(int(seconds * 1000))


def stream_headers(state: ServerState, inputs: str) -> dict[str, str]:
    return {
        "x-compute-type": state.compute_type,
        "x-compute-characters": str(len(inputs)),
    }


def generate_headers(
    state: ServerState, inputs: str, timings: RequestTimings, sequence: Generated
) -> dict[str, str]:
    """TGI's timing headers: `x-compute-time` in seconds, the other times in milliseconds."""
    return {
        "x-compute-type": state.compute_type,
        "x-compute-time": str(timings.total),
        "x-compute-characters": str(len(inputs)),
        "x-total-time": _ms(timings.total),
        "x-validation-time": _ms(timings.validation),
        "x-queue-time": _ms(timings.queue),
        "x-inference-time": _ms(timings.inference),
        "x-time-per-token": _ms(timings.time_per_token),
        "x-prompt-tokens": str(sequence.input_length),
        "x-generated-tokens": str(sequence.generated_tokens),
    }


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and so the engine request) if the client hangs up.

    NOTE: the body is already read, so the next ASGI message is `http.disconnect`; it arrives
    when the client goes away (or once the response is sent, when nobody listens any more).
    """
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and current is not None and not current.cancelling():
            raise ClientDisconnected() from None
        raise
    finally:
        watcher.cancel()
