"""Errors of the chat API for scripts in OpenAI's shape: `{"error": {"message", "type",
"code"}}` with the HTTP status, so the `openai` client raises its matching exception. The
messages are constants the tests import."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

MISSING_TOKEN = (
    "Send a personal API token as `Authorization: Bearer <token>` (create one in Settings)."
)
INVALID_TOKEN = "Invalid or revoked API token."
THROTTLED = "Too many failed API tokens from this address. Try again in {seconds} seconds."
NOT_FOUND = "Unknown API route: {path}."
METHOD_NOT_ALLOWED = "{method} is not allowed here (allowed: {allowed})."
ANSWER_FAILED = "The answer could not be generated."
MODEL_NOT_FOUND = "No listed model is named {model}."

# OpenAI's `type` for each status this API answers with.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
}


def error_body(message: str, status: int, code: str | None = None) -> dict[str, object]:
    """The error object (also sent as the last event of a stream that failed)."""
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "api_error"),
            "code": code,
        }
    }


def openai_error(message: str, status: int, code: str | None = None) -> JsonResponse:
    return JsonResponse(error_body(message, status, code), status=status)


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under /api/v1/ (any method: a bearer request never meets CSRF)."""
    return openai_error(NOT_FOUND.format(path=request.path), 404, "not_found")
