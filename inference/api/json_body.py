"""Request bodies parsed as TGI's JSON parser (serde_json) reads them, not as Python's does.

Python's `json` accepts `NaN`, `Infinity` and `-Infinity`, turns `1e999` into infinity and
keeps lone surrogates (`"\\ud800"`, which no tokenizer can take); serde_json refuses all of
them, and so do we: a non-finite number is never a valid parameter, and every comparison in
the validator is false for NaN. A body that is not UTF-8 is malformed JSON (422), not
FastAPI's undocumented 400. Must not import the engine or torch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from inference.api.errors import (
    INVALID_UTF8,
    LONE_SURROGATE,
    NON_FINITE,
    NUMBER_OUT_OF_RANGE,
    RECURSION_LIMIT,
)


class _Refused(ValueError):
    """A value the JSON grammar (RFC 8259) does not allow, found while parsing."""


def _reject_constant(name: str) -> Any:
    raise _Refused(NON_FINITE.format(name))


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(NUMBER_OUT_OF_RANGE)
    return value


# `\uD800`-`\uDFFF`: a surrogate escape; a valid pair decodes to one character, a lone one
# stays a surrogate no tokenizer (and no UTF-8 encoder) can take.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def parse_json(body: bytes | str) -> Any:
    """`json.loads` as strict as serde_json; raises `json.JSONDecodeError` (FastAPI's 422 path)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError(INVALID_UTF8, "", exc.start) from exc
    try:
        value = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
        if SURROGATE_ESCAPE.search(body) and has_lone_surrogate(value):
            raise _Refused(LONE_SURROGATE)
        return value
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:  # ours, too many digits, too deep
        message = str(exc) if isinstance(exc, ValueError) else RECURSION_LIMIT
        raise json.JSONDecodeError(message, body, 0) from exc


class StrictJsonRequest(Request):
    """A request whose `.json()` is `parse_json`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """The route class of every API router: its handler reads bodies with `parse_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
