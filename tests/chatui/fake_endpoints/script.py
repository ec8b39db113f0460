"""What a fake endpoint is told to do and what it records: scripts, tokens, recorded requests.

The error messages the fakes send are constants here, so tests can import and assert on them.
This module must not import Django or anything from ``chatui``: it stands in for the far side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

FailMode = Literal["status", "error_event", "hang", "stall", "drop"]

TGI_VALIDATION_ERROR = (
    "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
    "Given: 4000 `inputs` tokens and 1024 `max_new_tokens`"
)
TGI_GENERATION_ERROR = "Request failed during generation: Server error: CUDA out of memory"
OPENAI_ERROR = "The server had an error while processing your request."


@dataclass(frozen=True)
class Token:
    """One generated token as TGI reports it."""

    text: str
    id: int | None = None
    special: bool = False
    logprob: float = -0.25


EOS = Token("<|im_end|>", 2, special=True)


@dataclass
class Script:
    """What the fake does for one generation request.

    fail modes:
      - ``status``: answer ``status`` (default 500) with an error body, before any token;
      - ``error_event``: stream ``fail_after`` tokens, then an ``{"error": ...}`` event;
      - ``hang``: never send response headers (until ``hang_seconds`` or the server stops);
      - ``stall``: send headers and ``fail_after`` tokens, then go silent;
      - ``drop``: send ``fail_after`` tokens, then cut the connection mid-body.
    """

    tokens: Sequence[str | Token] = ("Hello", ",", " world", "!")
    # TGI: "eos_token" | "length" | "stop_sequence"; OpenAI: "stop" | "length".
    finish_reason: str | None = None
    delay: float = 0.0
    fail: FailMode | None = None
    fail_after: int = 0
    status: int = 500
    error: str | None = None
    error_type: str = "generation"
    hang_seconds: float = 60.0
    eos: Token | None = EOS  # TGI only: appended as a special token when finishing on EOS
    # OpenAI chat only: streamed first as vLLM's `reasoning_content` deltas.
    reasoning: Sequence[str] = ()


@dataclass
class RecordedRequest:
    """A request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
