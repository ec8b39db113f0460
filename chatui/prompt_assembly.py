"""What an answer is generated from: the conversation's path root -> answer as chat messages
(with the attached files read in the request), its system prompt, its model, and what the
answer's end needs (the tokens of a continued answer) and whether it retitles the conversation.

`chatui.prompting` turns these messages into a model's prompt; this module only picks them, so
it reads the models that `chatui.prompting` must not see. Built without a query: the request
(`chatui.services.GenerationRequest`) read everything in its own transaction.

Part of the domain: must not import the websocket layer (`chatui.consumers`, `chatui.routing`,
`chatui.streaming.socket`, `chatui.layers`), the streaming tasks or views.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any

from chatui.attachments import chat_message
from chatui.chat_config import get_chat_config
from chatui.models import DEFAULT_TITLE, Message
from chatui.prompting import ChatMessage, context_tokens, truncate_messages
from chatui.reasoning import strip_reasoning
from chatui.services.messages import GenerationRequest

CONTEXT_CUT = (
    "The conversation is longer than {model} reads: its {count} oldest messages were left out "
    "of this answer."
)


@dataclass(frozen=True)
class AnswerPrompt:
    """The input of one answer's generation (and of its title)."""

    model: Any  # `chatui.models_config.ModelSpec`
    preprompt: str
    messages: list[ChatMessage]
    question: str  # the last user message on the path
    previous_tokens: int  # tokens of the answer's text so far (continue)
    needs_title: bool
    title_source: str  # the first user message on the path: what the title summarises


def answer_prompt(request: GenerationRequest) -> AnswerPrompt:
    """The path root -> answer as chat messages (the answer itself only when continuing)."""
    answer, continue_message = request.assistant_message, request.continue_message
    conversation = answer.conversation
    path = list(request.path if continue_message else request.path[:-1])
    messages = [
        replace(
            _without_reasoning(
                chat_message(m, request.files), keep=continue_message and m is path[-1]
            ),
            tool_calls=tuple(m.tool_calls or ()),
        )
        for m in path
        if m.role == Message.Role.USER or (m.role == Message.Role.ASSISTANT and m.content)
    ]
    question = next((m.content for m in reversed(path) if m.role == Message.Role.USER), "")
    first = next((m for m in path if m.role == Message.Role.USER), None)
    return AnswerPrompt(
        model=get_chat_config().model(conversation.model),
        preprompt=conversation.system_prompt,
        messages=messages,
        question=question,
        previous_tokens=answer.generated_tokens if continue_message else 0,
        needs_title=_needs_title(request, first),
        title_source=first.content if first is not None else "",
    )


def _without_reasoning(message: ChatMessage, *, keep: bool) -> ChatMessage:
    """An earlier answer as the model gets it back: without its reasoning, as chat-ui sends it
    (`keep`: the answer being continued, whose reasoning may still be open)."""
    if keep or message.role != "assistant":
        return message
    return dataclasses.replace(message, content=strip_reasoning(message.content))


def fit_to_context(prompt: AnswerPrompt) -> tuple[AnswerPrompt, str]:
    """The prompt with its oldest turns dropped until it fits the model's context
    (`contextLength`), and the notice the user is shown when any were ("" when none)."""
    budget = context_tokens(prompt.model) if prompt.model.context_length else None
    kept = truncate_messages(prompt.messages, budget)
    dropped = len(prompt.messages) - len(kept)
    if not dropped:
        return prompt, ""
    notice = CONTEXT_CUT.format(count=dropped, model=prompt.model.display_name or prompt.model.id)
    return dataclasses.replace(prompt, messages=kept), notice


def _needs_title(request: GenerationRequest, first: Message | None) -> bool:
    """A generated title for a new conversation, and again when its first message is edited
    (the old title describes the other branch); never once the user renamed it."""
    conversation = request.assistant_message.conversation
    if conversation.is_title_custom or first is None:
        return False
    is_new_first = any(m.pk == first.pk for m in request.new_messages)
    return conversation.title == DEFAULT_TITLE or is_new_first
