"""What an answer is generated from: the conversation's path root -> answer as chat messages
(with the attached files read in the request), its system prompt, its model, and what the
answer's end needs (the question for the title, the tokens of a continued answer).

`chatui.prompting` turns these messages into a model's prompt; this module only picks them, so
it reads the models that `chatui.prompting` must not see. Built without a query: the request
(`chatui.services.GenerationRequest`) read everything in its own transaction.

Part of the domain: must not import the websocket layer (`chatui.consumers`, `chatui.routing`,
`chatui.streaming.socket`, `chatui.layers`), the streaming tasks or views.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chatui.attachments import chat_message
from chatui.chat_config import get_chat_config
from chatui.models import DEFAULT_TITLE, Message
from chatui.prompting import ChatMessage
from chatui.services.messages import GenerationRequest


@dataclass(frozen=True)
class AnswerPrompt:
    """The input of one answer's generation (and of its title)."""

    model: Any  # `chatui.models_config.ModelSpec`
    preprompt: str
    messages: list[ChatMessage]
    question: str  # the last user message on the path
    previous_tokens: int  # tokens of the answer's text so far (continue)
    needs_title: bool


def answer_prompt(request: GenerationRequest) -> AnswerPrompt:
    """The path root -> answer as chat messages (the answer itself only when continuing)."""
    answer, continue_message = request.assistant_message, request.continue_message
    conversation = answer.conversation
    path = list(request.path if continue_message else request.path[:-1])
    messages = [
        replace(chat_message(m, request.files), tool_calls=tuple(m.tool_calls or ()))
        for m in path
        if m.role == Message.Role.USER or (m.role == Message.Role.ASSISTANT and m.content)
    ]
    question = next((m.content for m in reversed(path) if m.role == Message.Role.USER), "")
    return AnswerPrompt(
        model=get_chat_config().model(conversation.model),
        preprompt=conversation.system_prompt,
        messages=messages,
        question=question,
        previous_tokens=answer.generated_tokens if continue_message else 0,
        needs_title=conversation.title == DEFAULT_TITLE,
    )
