"""TGI's `--api-key`: with a key set, a request to any route but the open ones must carry
`Authorization: Bearer <key>`, else 401 in TGI's error shape.

The open routes are the ones TGI leaves outside its key check that generate nothing: the
health checks, `/info`, `/metrics`, `/v1/models` and the API docs. Stricter than TGI, every
POST route needs the key (TGI leaves `/invocations` and `/chat_tokenize` open). The key is
compared in constant time. Pure ASGI, so a streamed answer passes through untouched; must
not import the engine.
"""

from __future__ import annotations

import hmac

from inference.api.docs import ASSETS_URL, DOCS_URL, OPENAPI_URL
from inference.api.errors import Unauthorized, error_response
from inference.api.payload import App, Receive, Scope, Send

OPEN_PATHS = frozenset(
    {"/", "/health", "/ping", "/info", "/metrics", "/v1/models", DOCS_URL, OPENAPI_URL}
)
OPEN_PREFIXES = (ASSETS_URL + "/",)  # the docs page's local assets
OPEN_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BEARER = b"bearer "


def is_open(method: str, path: str) -> bool:
    """Whether `method path` is answered without the key (`POST /` generates: not open)."""
    if method not in OPEN_METHODS:
        return False
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def key_matches(header: bytes | None, expected: bytes) -> bool:
    """`header` is `Bearer <expected>` (scheme in any case); constant time in the key."""
    if header is None or header[: len(BEARER)].lower() != BEARER:
        return False
    return hmac.compare_digest(header[len(BEARER) :].strip(), expected)


class ApiKey:
    """ASGI middleware refusing requests without the key with 401 `unauthorized`."""

    def __init__(self, app: App, api_key: str) -> None:
        self.app = app
        self.expected = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        if key_matches(header, self.expected):
            await self.app(scope, receive, send)
            return
        response = error_response(Unauthorized(), headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)
