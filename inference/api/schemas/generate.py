"""TGI's own generation API: `/generate`, `/generate_stream` and `/` requests and answers.

Class names are the schema names of `/api-doc/openapi.json` (GenerateRequest, Details,
StreamResponse, ...). Types only; must not import the engine, torch or any route.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field

from inference.api.schemas.common import (
    IGNORE_EOS,
    GrammarType,
    Integer,
    OmitEmpty,
    StrictBody,
)


class GenerateParameters(StrictBody):
    best_of: Integer | None = Field(
        default=None,
        description="Generate best_of sequences and return the one if the highest token logprobs.",
        examples=[1],
    )
    decoder_input_details: bool = Field(
        default=False, description="Whether to return decoder input token logprobs and ids."
    )
    details: bool = Field(default=False, description="Whether to return generation details.")
    do_sample: bool = Field(default=False, description="Activate logits sampling.")
    frequency_penalty: float | None = Field(
        default=None,
        description="Penalize new tokens based on their existing frequency in the text so far.",
        examples=[0.1],
    )
    grammar: GrammarType | None = Field(
        default=None, description="Constrain the output to a JSON Schema or a regex."
    )
    ignore_eos: bool = Field(default=False, description=IGNORE_EOS)
    max_new_tokens: Integer | None = Field(
        default=None,
        description="Maximum number of tokens to generate "
        "(default: up to 1024 within `max_total_tokens`).",
        examples=[20],
    )
    repetition_penalty: float | None = Field(
        default=None,
        description="The parameter for repetition penalty. 1.0 means no penalty.",
        examples=[1.03],
    )
    return_full_text: bool | None = Field(
        default=None, description="Whether to prepend the prompt to the generated text"
    )
    seed: Integer | None = Field(default=None, description="Random sampling seed.")
    stop: list[str] | None = Field(
        default=None,
        description="Stop generating tokens if a member of `stop` is generated.",
        examples=[["photographer"]],
    )
    temperature: float | None = Field(
        default=None,
        description="The value used to module the logits distribution (0 means greedy).",
        examples=[0.5],
    )
    top_k: Integer | None = Field(
        default=None,
        description="The number of highest probability vocabulary tokens to keep.",
        examples=[10],
    )
    top_n_tokens: Integer | None = Field(
        default=None,
        description="The number of highest probability vocabulary tokens to report per token.",
        examples=[5],
    )
    top_p: float | None = Field(
        default=None, description="Top-p value for nucleus sampling.", examples=[0.95]
    )
    truncate: Integer | None = Field(
        default=None, description="Truncate inputs tokens to the given size (keeps the last ones)."
    )
    typical_p: float | None = Field(
        default=None, description="Typical Decoding mass.", examples=[0.95]
    )
    watermark: bool = Field(default=False, description="Not supported by this server.")
    adapter_id: str | None = Field(default=None, description="Not supported by this server.")


def default_parameters() -> GenerateParameters:
    """TGI's defaults when `parameters` is absent: sampling on (its documented quirk)."""
    return GenerateParameters(do_sample=True)


class GenerateRequest(StrictBody):
    inputs: str = Field(examples=["My name is Olivier and I"])
    parameters: GenerateParameters = Field(default_factory=default_parameters)


class CompatGenerateRequest(GenerateRequest):
    stream: bool = False


class FinishReason(enum.StrEnum):
    length = "length"
    eos_token = "eos_token"
    stop_sequence = "stop_sequence"


class Token(BaseModel):
    id: int
    text: str
    logprob: float | None = None
    special: bool = False


class PrefillToken(BaseModel):
    id: int
    text: str
    logprob: float | None = None


class BestOfSequence(OmitEmpty):
    omit_if_empty = ("top_tokens",)

    generated_text: str
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None = None
    prefill: list[PrefillToken] = Field(default_factory=list)
    tokens: list[Token] = Field(default_factory=list)
    top_tokens: list[list[Token]] = Field(default_factory=list)


class Details(OmitEmpty):
    omit_if_empty = ("best_of_sequences", "top_tokens")

    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None = None
    prefill: list[PrefillToken] = Field(default_factory=list)
    tokens: list[Token] = Field(default_factory=list)
    top_tokens: list[list[Token]] = Field(default_factory=list)
    best_of_sequences: list[BestOfSequence] | None = None


class GenerateResponse(OmitEmpty):
    omit_if_empty = ("details",)

    generated_text: str
    details: Details | None = None


class StreamDetails(BaseModel):
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None = None
    input_length: int


class StreamResponse(OmitEmpty):
    omit_if_empty = ("top_tokens",)

    index: int
    token: Token
    top_tokens: list[Token] = Field(default_factory=list)
    generated_text: str | None = None
    details: StreamDetails | None = None
