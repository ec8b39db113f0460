"""Errors the HTTP layer answers with, shaped as TGI's `ErrorResponse` (`{error, error_type}`).

Every message a client can see is a constant here (or in `validation`), so tests import them.
Owns the FastAPI exception handlers; must not import the engine or torch.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

logger = logging.getLogger(__name__)

VALIDATION_PREFIX = "Input validation error: "
OVERLOADED = "Model is overloaded"
MODEL_LOADING = "Model is loading"
MODEL_LOAD_FAILED = "Model failed to load: {0}"
GENERATION_FAILED = "Request failed during generation: {0}"
INCOMPLETE_GENERATION = "Incomplete generation"
TEMPLATE_FAILED = "Failed applying chat template to inputs: {0}"
MALFORMED_JSON = "Failed to parse the request body as JSON: {0}"
MALFORMED_BODY = "Failed to deserialize the JSON body into the target type: {0}"
INTERNAL_ERROR = "Internal server error: {0}"
CLIENT_CLOSED = "Client closed the connection"
# axum's words for a body over TGI's `--payload-limit`, with the limit.
PAYLOAD_TOO_LARGE = "Failed to buffer the request body: length limit exceeded ({0} bytes at most)"
INVALID_UTF8 = "the body is not valid UTF-8"
LONE_SURROGATE = "lone surrogate in a string (not a Unicode character)"
NON_FINITE = "`{0}` is not a JSON number (NaN and infinities are refused)"
NUMBER_OUT_OF_RANGE = "number out of range"
RECURSION_LIMIT = "recursion limit exceeded"
UNAUTHORIZED = "Unauthorized: send the server's API key as `Authorization: Bearer <key>`"


class ApiError(Exception):
    """An error with its HTTP status and TGI `error_type`; raised anywhere in a handler."""

    status_code = 500
    error_type = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def payload(self) -> dict[str, str]:
        return {"error": self.message, "error_type": self.error_type}


class ValidationFailed(ApiError):
    """422: the request is well-formed but asks for something the limits or rules forbid."""

    status_code = 422
    error_type = "validation"

    def __init__(self, detail: str) -> None:
        super().__init__(VALIDATION_PREFIX + detail)
        self.detail = detail


class MalformedRequest(ApiError):
    """422: the body is not JSON or does not have the schema's shape (axum's JSON rejection)."""

    status_code = 422
    error_type = "validation"


class TemplateFailed(ApiError):
    """422: the chat template could not render the messages."""

    status_code = 422
    error_type = "template_error"


class Overloaded(ApiError):
    """429: `max_concurrent_requests` are already in flight."""

    status_code = 429
    error_type = "overloaded"

    def __init__(self, message: str = OVERLOADED) -> None:
        super().__init__(message)


class GenerationFailed(ApiError):
    """424: the engine failed while generating."""

    status_code = 424
    error_type = "generation"

    def __init__(self, detail: str) -> None:
        super().__init__(GENERATION_FAILED.format(detail))


class IncompleteGeneration(ApiError):
    """500: the engine stopped without a final event."""

    status_code = 500
    error_type = "incomplete_generation"

    def __init__(self) -> None:
        super().__init__(INCOMPLETE_GENERATION)


class ModelLoading(ApiError):
    """503: the model is not loaded (or not warmed up) yet."""

    status_code = 503
    error_type = "unhealthy"

    def __init__(self, message: str = MODEL_LOADING) -> None:
        super().__init__(message)


class PayloadTooLarge(ApiError):
    """413: the body is over `--payload-limit`; refused before it is parsed."""

    status_code = 413
    error_type = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(PAYLOAD_TOO_LARGE.format(limit))


class Unauthorized(ApiError):
    """401: the server was started with `--api-key` and the request did not carry it."""

    status_code = 401
    error_type = "unauthorized"

    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


class ClientDisconnected(ApiError):
    """499 (nginx's code): the client left before the answer; its generation was cancelled."""

    status_code = 499
    error_type = "cancelled"

    def __init__(self) -> None:
        super().__init__(CLIENT_CLOSED)


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.payload(), status_code=error.status_code, headers=headers)


def describe_validation_errors(errors: list[dict[str, Any]]) -> ApiError:
    """Turn pydantic's error list into one readable message, as axum's rejection reads."""
    for error in errors:
        if error.get("type") == "json_invalid":
            ctx = error.get("ctx") or {}
            return MalformedRequest(MALFORMED_JSON.format(ctx.get("error", error.get("msg"))))
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid value')}")
    return MalformedRequest(MALFORMED_BODY.format("; ".join(parts)))


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's:
    `GET /` and `POST /` are two routes)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as `{error, error_type}` JSON: never a bare 500 page or HTML."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(describe_validation_errors(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = ApiError(str(exc.detail))
        error.status_code = exc.status_code
        error.error_type = "http"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(error, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("Unhandled error")
        return error_response(ApiError(INTERNAL_ERROR.format(type(exc).__name__)))
