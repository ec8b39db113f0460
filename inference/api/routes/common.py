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
from inference.api.schemas import ErrorResponse
from inference.api.state import Permit, ServerState
from inference.api.validation import ValidRequest
from inference.metrics import RequestTimings

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Input validation error"},
    424: {"model": ErrorResponse, "description": "Generation Error"},
    429: {"model": ErrorResponse, "description": "Model is overloaded"},
    500: {"model": ErrorResponse, "description": "Incomplete generation"},
    503: {"model": ErrorResponse, "description": "Model is loading"},
}

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


def admit_validated(state: ServerState, prepare: Callable[[], T]) -> tuple[Permit, T]:
    """Take a concurrency permit, then validate: a refused request gives its permit back and
    is counted as a failure, so a stream's permit is only held by a request that will run."""
    permit = state.admit()
    try:
        return permit, prepare()
    except BaseException as error:
        permit.release()
        if isinstance(error, ApiError):
            count_failure(state, error)
        raise


def validate(state: ServerState, inputs: str, parameters: Any, **kwargs: Any) -> ValidRequest:
    """Validate with the server's limits and record the input size (callers count failures)."""
    assert state.validator is not None
    valid = state.validator.validate(inputs, parameters, **kwargs)
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
