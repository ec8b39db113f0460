"""The body of `POST /api/v1/chat/completions`, as OpenAI's clients send it, checked by
pydantic. Fields this API does not use (temperature, max_tokens, ...) are accepted and
ignored: the model's `parameters` in MODELS decide, as for the page."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chatui.errors import ChatError
from chatui.services import ChatTurn
from chatui.validation import describe

ONLY_TEXT = "Only text content is supported (a `text` part, or a string)."
BODY_INVALID = "Invalid request body: {where}: {problem}"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class MessageIn(_Body):
    # "developer" is OpenAI's newer name for "system".
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    model: str
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # This API's own: continue one of the user's conversations (`extra_body` in `openai`).
    conversation_id: UUID | None = None

    def turns(self) -> list[ChatTurn]:
        return [
            ChatTurn("system" if m.role == "developer" else m.role, m.text()) for m in self.messages
        ]

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


def parse_request(data: dict[str, object]) -> ChatCompletionRequest:
    """The checked body, or a ChatError naming the first field that is wrong."""
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = error["loc"]
        if "content" in location:
            raise ChatError(ONLY_TEXT) from None
        where = ".".join(str(part) for part in location) or "body"
        problem = error["msg"]
        if "input" in error and error["type"] == "literal_error":
            problem = f"{problem} (got {describe(error['input'])})"
        raise ChatError(BODY_INVALID.format(where=where, problem=problem)) from None
