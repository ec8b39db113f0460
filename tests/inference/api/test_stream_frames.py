"""The per-token frames written without models are byte for byte what the models write."""

from __future__ import annotations

import pytest

from inference.api.schemas import (
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionDelta,
    StreamResponse,
    Token,
)
from inference.api.sse import frame
from inference.api.stream_frames import ChatChunkFrames, tgi_token_frame
from inference.types import TokenInfo

TEXTS = [
    "",
    "plain",
    " héllo",
    "🤗",
    "中文",
    'quote " backslash \\ slash /',
    "\n\t\r\b\f",
    "\x00\x1f\x7f",
]
LOGPROBS = [None, 0.0, -0.0, -1e-7, -3.5762786865234375e-07, -0.1, -123.456789, float("-inf")]


def model_token(token: TokenInfo) -> Token:
    return Token(id=token.id, text=token.text, logprob=token.logprob, special=token.special)


def tokens() -> list[TokenInfo]:
    return [
        TokenInfo(id=i * 7919, text=text, logprob=logprob, special=i % 3 == 0)
        for i, (text, logprob) in enumerate((t, lp) for t in TEXTS for lp in LOGPROBS)
    ]


@pytest.mark.parametrize("num_top", [0, 1, 3])
def test_tgi_token_frame_equals_the_stream_response_model(num_top):
    all_tokens = tokens()
    for index, token in enumerate(all_tokens, start=1):
        top = all_tokens[index : index + num_top]
        expected = StreamResponse(
            index=index, token=model_token(token), top_tokens=[model_token(t) for t in top]
        ).model_dump_json()
        assert tgi_token_frame(index, token, top) == frame(expected)


@pytest.mark.parametrize("finish_reason", [None, "stop", "length"])
def test_chat_content_frame_equals_the_chunk_model(finish_reason):
    meta = {
        "id": 'chatcmpl-\u00e9"1',
        "created": 1733472000,
        "model": "tgi / ünïcode",
        "system_fingerprint": "3.0.0-native",
    }
    frames = ChatChunkFrames(meta)
    for text in TEXTS:
        choice = ChatCompletionChoice(
            index=0,
            delta=ChatCompletionDelta(role="assistant", content=text),
            logprobs=None,
            finish_reason=finish_reason,
        )
        expected = ChatCompletionChunk(**meta, choices=[choice]).model_dump_json()
        assert frames.content(text, finish_reason) == frame(expected)
