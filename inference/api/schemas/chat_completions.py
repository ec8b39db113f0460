"""OpenAI's chat completions API (`/v1/chat/completions`): the request, its messages and
tools, the answer and its streamed chunks, as TGI names them in its OpenAPI document.

Types only; must not import the engine, torch or any route.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inference.api.schemas.common import (
    IGNORE_EOS,
    GrammarJson,
    GrammarJsonSchema,
    GrammarRegex,
    Integer,
    JsonSchemaConfig,
    StrictBody,
)
from inference.api.schemas.openai import StreamOptions, Usage

# ------------------------------------------------------------------------------- requests


class ResponseFormatJsonSchema(StrictBody):
    """OpenAI's structured-output form."""

    type: Literal["json_schema"]
    json_schema: JsonSchemaConfig


class ResponseFormatJsonObject(StrictBody):
    """OpenAI's JSON mode: any JSON object."""

    type: Literal["json_object"]


class ResponseFormatText(StrictBody):
    """OpenAI's default: plain text, no constraint."""

    type: Literal["text"]


class Url(StrictBody):
    url: str


class MessageChunk(StrictBody):
    """One part of a message's content: text, or an image this server rejects."""

    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: Url | None = None


class Message(StrictBody):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="allow")

    role: str = Field(examples=["user"])
    content: str | list[MessageChunk] | None = Field(
        default=None, examples=["What is Deep Learning?"]
    )
    name: str | None = None


class FunctionDefinition(StrictBody):
    """A function the model may call; `parameters` (OpenAI) or `arguments` (TGI) is its JSON
    Schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    arguments: dict[str, Any] | None = None


class Tool(StrictBody):
    type: Literal["function"] = Field(examples=["function"])
    function: FunctionDefinition


class FunctionName(StrictBody):
    name: str


class ToolChoiceFunction(StrictBody):
    """Call this function (`type` may be given, as OpenAI clients send it)."""

    type: Literal["function"] | None = None
    function: FunctionName


ToolChoice = Literal["auto", "none", "required"] | ToolChoiceFunction


class ChatRequest(StrictBody):
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
    ignore_eos: bool = Field(default=False, description=IGNORE_EOS)
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


# ------------------------------------------------------------------------------ responses


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
