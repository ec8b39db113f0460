"""Checks on untrusted input where it enters: JSON API bodies, websocket messages, query strings.

What the parser or the database cannot take becomes a `ChatError` with a readable message,
never a 500 or a dropped socket: JSON nested too deeply for the parser (a `RecursionError`, not
a `ValueError`), and the NUL character, which Postgres refuses in any text or JSON column.
Pure functions; must not import models, services, views or the websocket layer (consumers,
routing, `chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import json
from typing import Any

from chatui.errors import ChatError

INVALID_JSON = "The request body must be a JSON object."
TOO_DEEP = "The JSON is nested too deeply."
NUL_CHARACTER = "Text cannot contain the NUL character (\\u0000)."
BODY_TOO_LARGE = "The request body is too large."

SHORT_VALUE_CHARS = 60  # what an error message may quote of a wrong value


def parse_json(text: str | bytes, *, message: str = INVALID_JSON) -> Any:
    """`text` parsed; `message` (or TOO_DEEP) as a ChatError when it is not JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ChatError(TOO_DEEP) from None
    except ValueError:  # UnicodeDecodeError included
        raise ChatError(message) from None


def check_no_nul(value: Any) -> None:
    """Raises NUL_CHARACTER when any string in `value` (keys included) holds a NUL.

    Iterative: `value` may be as deep as the JSON parser allowed, close to the recursion limit.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ChatError(NUL_CHARACTER)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_json_object(text: str | bytes, *, message: str = INVALID_JSON) -> dict[str, Any]:
    """A JSON object without NUL characters, or a ChatError saying what is wrong."""
    data = parse_json(text, message=message)
    if not isinstance(data, dict):
        raise ChatError(message)
    check_no_nul(data)
    return data


def describe(value: Any) -> str:
    """A wrong value as an error message may quote it: short scalars as they are, anything
    else by its kind (a 1 MB string or a deeply nested list is never echoed back)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str | int | float):
        text = str(value)
        return text if len(text) <= SHORT_VALUE_CHARS else text[: SHORT_VALUE_CHARS - 3] + "..."
    return {dict: "an object", list: "a list"}.get(type(value), "a value of the wrong type")
