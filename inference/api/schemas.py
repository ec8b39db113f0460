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


class JsonSchemaConfig(_Body):
    """A named JSON Schema: TGI's `json_schema` grammar value and OpenAI's `json_schema`."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, populate_by_name=True)

    name: str | None = Field(default=None, description="Optional name identifier for the schema")
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON Schema itself")
    strict: bool | None = Field(default=None, description="Accepted; output always follows it")


class GrammarJson(_Body):
    type: Literal["json"]
    value: dict[str, Any] | str = Field(
        description="A JSON Schema (an object, or its JSON text) the output must follow."
    )


class GrammarRegex(_Body):
    type: Literal["regex"]
    value: str = Field(description="A regular expression the whole output must match.")


class GrammarJsonSchema(_Body):
    type: Literal["json_schema"]
    value: JsonSchemaConfig


# TGI's GrammarType: `{"type": "json" | "regex" | "json_schema", "value": ...}`.
GrammarType = Annotated[GrammarJson | GrammarRegex | GrammarJsonSchema, Field(discriminator="type")]


class ResponseFormatJsonSchema(_Body):
    """OpenAI's structured-output form."""

    type: Literal["json_schema"]
    json_schema: JsonSchemaConfig


class ResponseFormatJsonObject(_Body):
    """OpenAI's JSON mode: any JSON object."""

    type: Literal["json_object"]


class ResponseFormatText(_Body):
    """OpenAI's default: plain text, no constraint."""

    type: Literal["text"]


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
    grammar: GrammarType | None = Field(
        default=None, description="Constrain the output to a JSON Schema or a regex."
    )
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
    # Not TGI's: the tokenizer's chat template, so that a client on another machine can
    # render prompts the way the model was trained (None: the tokenizer has none).
    chat_template: str | None = None


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


class FunctionDefinition(_Body):
    """A function the model may call; `parameters` (OpenAI) or `arguments` (TGI) is its JSON
    Schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    arguments: dict[str, Any] | None = None


class Tool(_Body):
    type: Literal["function"] = Field(examples=["function"])
    function: FunctionDefinition


class FunctionName(_Body):
    name: str


class ToolChoiceFunction(_Body):
    """Call this function (`type` may be given, as OpenAI clients send it)."""

    type: Literal["function"] | None = None
    function: FunctionName


ToolChoice = Literal["auto", "none", "required"] | ToolChoiceFunction


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
    tools: list[Tool] | None = Field(
        default=None,
        description="Functions the model may call; the answer is then a `tool_calls` message.",
    )
    tool_choice: ToolChoice | None = Field(
        default=None, description="`auto` (default), `none`, `required`, or one function."
    )
    tool_prompt: str | None = Field(
        default=None, description="A prompt to be appended before the tools"
    )
    response_format: (
        Annotated[
            GrammarJson
            | GrammarRegex
            | GrammarJsonSchema
            | ResponseFormatJsonSchema
            | ResponseFormatJsonObject
            | ResponseFormatText,
            Field(union_mode="left_to_right"),
        ]
        | None
    ) = Field(
        default=None,
        description="Constrain the answer: TGI's grammar forms or OpenAI's "
        "`json_schema` / `json_object` / `text`.",
    )


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


class ToolCallFunction(BaseModel):
    """A call's function: `arguments` is its JSON text (as OpenAI and huggingface_hub read it)."""

    name: str
    arguments: str
    description: str | None = None


class ToolCall(BaseModel):
    id: str
    type: str = "function"
    function: ToolCallFunction


class ToolCallMessage(BaseModel):
    role: str = "assistant"
    tool_calls: list[ToolCall]


class ChatCompletionComplete(BaseModel):
    index: int = 0
    message: TextMessage | ToolCallMessage
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


class Function(BaseModel):
    """A piece of a streamed call: the name in the first delta, then `arguments` text."""

    name: str | None = None
    arguments: str


class DeltaToolCall(BaseModel):
    index: int = 0
    id: str
    type: str = "function"
    function: Function


class ToolCallDelta(BaseModel):
    role: str = "assistant"
    tool_calls: list[DeltaToolCall]


class ChatCompletionChoice(BaseModel):
    index: int = 0
    delta: ChatCompletionDelta | ToolCallDelta
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
