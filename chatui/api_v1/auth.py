"""The bearer check of every `/api/v1/` view: the client address's throttle first, then the
token; the view gets the token's owner as an `Identity`. The session cookie is ignored (and
CSRF does not apply): a token grants this API only, never the pages or the admin.

A wrong token counts against the client address (`REMOTE_ADDR`: behind a proxy, let the
server set it from the proxy's header); past the limit the address gets 429 with Retry-After.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from chatui import services
from chatui.api_v1.errors import (
    INVALID_TOKEN,
    METHOD_NOT_ALLOWED,
    MISSING_TOKEN,
    THROTTLED,
    openai_error,
)
from chatui.errors import ChatError
from chatui.identity import Identity

View = Callable[..., Awaitable[HttpResponse]]


def _bearer(request: HttpRequest) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _authenticate(request: HttpRequest) -> Identity | HttpResponse:
    """The token's owner, or the error response (sync: it queries)."""
    address = request.META.get("REMOTE_ADDR", "")
    wait_s = services.throttle_wait_s(address=address)
    if wait_s:
        response = openai_error(THROTTLED.format(seconds=wait_s), 429, "too_many_failures")
        response["Retry-After"] = str(wait_s)
        return response
    raw = _bearer(request)
    token = services.api_token_authenticate(raw=raw) if raw else None
    if token is None:
        if raw:  # a wrong guess; a request without a token guesses nothing
            services.throttle_failure(address=address)
        message, code = (INVALID_TOKEN, "invalid_api_key") if raw else (MISSING_TOKEN, None)
        response = openai_error(message, 401, code)
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    return Identity(user_id=token.user_id)


def token_view(*methods: str) -> Callable[[View], View]:
    """An async view of the API: allowed methods (else 405), the bearer's identity as the
    first argument, a ChatError as an OpenAI error."""
    allowed = ", ".join(methods)

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                message = METHOD_NOT_ALLOWED.format(method=request.method, allowed=allowed)
                response = openai_error(message, 405, "method_not_allowed")
                response["Allow"] = allowed
                return response
            identity = await sync_to_async(_authenticate)(request)
            if isinstance(identity, HttpResponse):
                return identity
            try:
                return await view(request, identity, *args, **kwargs)
            except ChatError as exc:
                return openai_error(exc.message, exc.status)

        return wrapper

    return decorate
