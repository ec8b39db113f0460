"""OpenAI's completions API (`/v1/completions`): the request, the answer and its chunks.

Types only; must not import the engine, torch or any route.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from inference.api.schemas.common import IGNORE_EOS, Integer, StrictBody
from inference.api.schemas.openai import StreamOptions, Usage


class CompletionRequest(StrictBody):
    prompt: str | list[str] = Field(examples=["What is Deep Learning?"])
    model: str | None = Field(default=None, description="[UNUSED] echoed back in the response.")
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    max_tokens: Integer | None = Field(default=None, examples=[32])
    n: Integer | None = None
    seed: Integer | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    logprobs: int | None = None
    ignore_eos: bool = Field(default=False, description=IGNORE_EOS)


class CompletionComplete(BaseModel):
    index: int = 0
    text: str
    logprobs: list[float | None] | None = None
    finish_reason: str | None


class CompletionFinal(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionComplete]
    usage: Usage


class Chunk(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionComplete]
    usage: Usage | None = None
