"""The wire types: pydantic models named and shaped exactly as TGI's OpenAPI document.

Class names become the schema names of `/api-doc/openapi.json` (GenerateRequest, Details,
StreamResponse, ChatCompletionChunk, ...). Types only: no validation rules beyond JSON shape
(those live in `validation`), no engine, no torch.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    model_serializer,
)


class _Wire(BaseModel):
    """A response model that drops some keys when empty, as TGI's `skip_serializing_if` does."""

    model_config = ConfigDict(populate_by_name=True)
    omit_if_empty: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler):
        data = handler(self)
        for key in self.omit_if_empty:
            if data.get(key) in (None, [], {}):
                data.pop(key, None)
        return data


# --------------------------------------------------------------------------- TGI requests


def _integral(value: Any) -> Any:
    """JSON Schema counts `2.0` as an integer, so the document's `integer` accepts it too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A request integer: a JSON integer, or a number with no fractional part; never a string.
Integer = Annotated[int, BeforeValidator(_integral)]


class _Body(BaseModel):
    """A request model read as TGI's serde reads JSON: no coercion (`0` is not `false`, `"1.5"`
    is not a number) and no NaN or infinity, so the OpenAPI document's types are the truth."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class GrammarType(_Body):
    """Accepted so a request that names a grammar gets a clear 422 instead of a shape error."""

    type: str
    value: Any = None


class GenerateParameters(_Body):
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
    grammar: GrammarType | None = Field(default=None, description="Not supported by this server.")
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


class GenerateRequest(_Body):
    inputs: str = Field(examples=["My name is Olivier and I"])
    parameters: GenerateParameters = Field(default_factory=default_parameters)


class CompatGenerateRequest(GenerateRequest):
    stream: bool = False


# -------------------------------------------------------------------------- TGI responses


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


class BestOfSequence(_Wire):
    omit_if_empty = ("top_tokens",)

    generated_text: str
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None = None
    prefill: list[PrefillToken] = Field(default_factory=list)
    tokens: list[Token] = Field(default_factory=list)
    top_tokens: list[list[Token]] = Field(default_factory=list)


class Details(_Wire):
    omit_if_empty = ("best_of_sequences", "top_tokens")

    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None = None
    prefill: list[PrefillToken] = Field(default_factory=list)
    tokens: list[Token] = Field(default_factory=list)
    top_tokens: list[list[Token]] = Field(default_factory=list)
    best_of_sequences: list[BestOfSequence] | None = None


class GenerateResponse(_Wire):
    omit_if_empty = ("details",)

    generated_text: str
    details: Details | None = None


class StreamDetails(BaseModel):
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None = None
    input_length: int


class StreamResponse(_Wire):
    omit_if_empty = ("top_tokens",)

    index: int
    token: Token
    top_tokens: list[Token] = Field(default_factory=list)
    generated_text: str | None = None
    details: StreamDetails | None = None


class ErrorResponse(BaseModel):
    error: str
    error_type: str


class Info(BaseModel):
    model_id: str
    model_sha: str | None = None
    model_dtype: str
    model_device_type: str
    quantize: str | None = None  # TGI's launcher flag: None for dense weights
    model_pipeline_tag: str | None = "text-generation"
    max_concurrent_requests: int
    max_best_of: int
    max_stop_sequences: int
    max_input_tokens: int
    max_input_length: int
    max_total_tokens: int
    max_batch_total_tokens: int
    max_batch_prefill_tokens: int
    max_batch_size: int
    max_top_n_tokens: int
    waiting_served_ratio: float
    max_waiting_tokens: int
    validation_workers: int
    max_client_batch_size: int
    router: str
    version: str
    sha: str | None = None
    docker_label: str | None = None


class SimpleToken(BaseModel):
    id: int
    text: str
    start: int
    stop: int


class TokenizeResponse(RootModel[list[SimpleToken]]):
    pass


class ChatTokenizeResponse(BaseModel):
    tokenize_response: list[SimpleToken]
    templated_text: str


# ----------------------------------------------------------------------- OpenAI requests


class Url(_Body):
    url: str


class MessageChunk(_Body):
    """One part of a message's content: text, or an image this server rejects."""

    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: Url | None = None


class Message(_Body):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="allow")

    role: str = Field(examples=["user"])
    content: str | list[MessageChunk] | None = Field(
        default=None, examples=["What is Deep Learning?"]
    )
    name: str | None = None


class StreamOptions(_Body):
    include_usage: bool = False


class ChatRequest(_Body):
    messages: list[Message] = Field(
        examples=[[{"role": "user", "content": "What is Deep Learning?"}]]
    )
    model: str | None = Field(default=None, description="[UNUSED] echoed back in the response.")
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: Any = Field(default=None, description="UNUSED")
    logprobs: bool | None = None
    top_logprobs: Integer | None = None
    max_tokens: Integer | None = Field(default=None, examples=[32])
    max_completion_tokens: Integer | None = None
    n: Integer | None = None
    seed: Integer | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: list[Any] | None = Field(default=None, description="Not supported by this server.")
    tool_choice: Any = Field(default=None, description="Not supported by this server.")
    tool_prompt: str | None = None
    response_format: Any = Field(default=None, description="Not supported by this server.")


class CompletionRequest(_Body):
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


# ---------------------------------------------------------------------- OpenAI responses


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionTopLogprob(BaseModel):
    token: str
    logprob: float | None


class ChatCompletionLogprob(BaseModel):
    token: str
    logprob: float | None
    top_logprobs: list[ChatCompletionTopLogprob] = Field(default_factory=list)


class ChatCompletionLogprobs(BaseModel):
    content: list[ChatCompletionLogprob]


class TextMessage(BaseModel):
    role: str = "assistant"
    content: str


class ChatCompletionComplete(BaseModel):
    index: int = 0
    message: TextMessage
    logprobs: ChatCompletionLogprobs | None = None
    finish_reason: str


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatCompletionComplete]
    usage: Usage


class ChatCompletionDelta(BaseModel):
    role: str = "assistant"
    content: str


class ChatCompletionChoice(BaseModel):
    index: int = 0
    delta: ChatCompletionDelta
    logprobs: ChatCompletionLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatCompletionChoice]
    usage: Usage | None = None


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


class ModelInfo(BaseModel):
    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelsInfo(BaseModel):
    object: str = "list"
    data: list[ModelInfo]
