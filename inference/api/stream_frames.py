"""The SSE frames sent once per token, written without building pydantic models.

A streamed token's frame is the same document every time but for a few values, so it is
written from plain values (TGI's `StreamResponse`) or from bytes cut once per stream out of
the model's own serialisation (OpenAI's `ChatCompletionChunk`). `pydantic_core.to_json` is
the serialiser `model_dump_json` uses, so strings and floats come out byte for byte the same
(the tests compare both ways). Frames that are not per token (the last, errors) keep the
models. Must not import the engine or torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import to_json as _to_json

from inference.api.schemas import (
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionDelta,
)
from inference.types import TokenInfo


def to_json(value: object) -> bytes:
    """Compact JSON as the response models write it (an infinite logprob becomes null)."""
    return _to_json(value, inf_nan_mode="null")


_HOLE = "\x00hole\x00"  # a value no model field holds, cut out of a rendered template
_HOLE_JSON = to_json(_HOLE)


def token_doc(token: TokenInfo) -> dict:
    """TGI's `Token` as its schema orders the keys."""
    return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": token.special}


def tgi_token_frame(index: int, token: TokenInfo, top_tokens: Sequence[TokenInfo]) -> bytes:
    """The `StreamResponse` of a token that is not the last (no text, no details yet)."""
    doc: dict = {"index": index, "token": token_doc(token)}
    if top_tokens:  # NOTE: omitted when empty, as `StreamResponse` (and TGI) omit it
        doc["top_tokens"] = [token_doc(t) for t in top_tokens]
    doc["generated_text"] = None
    doc["details"] = None
    return b"data: " + to_json(doc) + b"\n\n"


class ChatChunkFrames:
    """One stream's content chunks: the chunk rendered once, its content and finish reason
    written into the bytes around them for every token."""

    def __init__(self, meta_fields: dict) -> None:
        delta = ChatCompletionDelta(role="assistant", content=_HOLE)
        choice = ChatCompletionChoice(index=0, delta=delta, logprobs=None, finish_reason=_HOLE)
        rendered = ChatCompletionChunk(**meta_fields, choices=[choice]).model_dump_json()
        parts = rendered.encode().split(_HOLE_JSON)
        if len(parts) != 3:
            raise ValueError("the chunk template must hold the content and the finish reason")
        self._head = b"data: " + parts[0]
        self._middle = parts[1]
        self._tail = parts[2] + b"\n\n"

    def content(self, text: str, finish_reason: str | None = None) -> bytes:
        """The frame of a content delta (no logprobs), last when `finish_reason` is set."""
        return self._head + to_json(text) + self._middle + to_json(finish_reason) + self._tail
