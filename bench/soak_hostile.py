"""The hostile frames a soak visitor sends, and the limits the web processes refuse them by.

Each kind is a frame the server must refuse with an error event (or, for a frame over 1 MiB,
by closing the socket with 1009) without storing anything: a NUL character, a message over the
length limit, frames that are not JSON objects, a binary frame, JSON nested 100000 deep.

Must not import Django or `chatui`: the app runs in other processes.
"""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_LENGTH = 10000  # USAGE_LIMITS.messageLength in the soak's web processes
CLOSE_TOO_BIG = 1009
HOSTILE = (
    "nul",
    "too_long",
    "not_json",
    "type_list",
    "type_object",
    "not_object",
    "binary",
    "nested",
    "too_big",
)


def hostile_frame(kind: str) -> str | bytes | dict[str, Any]:
    """The frame of one of the `HOSTILE` kinds (a dict is sent as JSON)."""
    frames: dict[str, str | bytes | dict[str, Any]] = {
        "nul": {"type": "send", "content": "a\x00b", "parent_id": None},
        "too_long": {"type": "send", "content": "x" * (MAX_MESSAGE_LENGTH + 1)},
        "not_json": "{not json",
        "type_list": {"type": ["send"]},
        "type_object": {"type": {"send": 1}},
        "not_object": "[1, 2, 3]",
        "binary": b"\x00\xffbinary",
        "nested": "[" * 100000,
        "too_big": json.dumps({"type": "send", "content": "y" * (1024 * 1024 + 1)}),
    }
    return frames[kind]
