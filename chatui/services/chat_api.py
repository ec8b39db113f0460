"""The conversation behind one request of the chat API for scripts (chatui.api_v1): an
OpenAI-style message list becomes a conversation of the user (shown in their sidebar) whose
last user message is sent as the page sends one, through `message_send` (the earlier ones
stored before it, as its history), so the same usage limits apply and the same answer task
streams it. A request may instead continue one of the user's conversations.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.selectors import answer_latest, conversation_get
from chatui.services.conversations import conversation_create
from chatui.services.messages import GenerationRequest, message_send

MESSAGES_EMPTY = "`messages` must hold at least one user message."
LAST_NOT_USER = "The last message must be the user's."
ROLES_OUT_OF_ORDER = (
    "After the system messages, user and assistant messages must alternate, starting with "
    "the user's."
)


@dataclass(frozen=True)
class ChatTurn:
    """One message of the request: role "system", "user" or "assistant", and its text."""

    role: str
    content: str


def _split(turns: Sequence[ChatTurn]) -> tuple[str | None, list[ChatTurn], str]:
    """(the system prompt or None, the earlier turns, the question), or a ChatError."""
    system = [t.content for t in turns if t.role == "system"]
    dialogue = [t for t in turns if t.role != "system"]
    if not dialogue:
        raise ChatError(MESSAGES_EMPTY)
    if dialogue[-1].role != "user":
        raise ChatError(LAST_NOT_USER)
    expected = ("user", "assistant")
    if any(t.role != expected[i % 2] for i, t in enumerate(dialogue)):
        raise ChatError(ROLES_OUT_OF_ORDER)
    return ("\n\n".join(system) if system else None), dialogue[:-1], dialogue[-1].content


def api_chat_start(
    *, identity: Identity, model: str, turns: Sequence[ChatTurn]
) -> GenerationRequest:
    """A new conversation on `model` holding `turns`, and its answer to stream. Nothing is
    stored when a check refuses (one transaction)."""
    system_prompt, history, question = _split(turns)
    with transaction.atomic():
        conversation = conversation_create(
            identity=identity, model=model, system_prompt=system_prompt
        )
        return message_send(
            identity=identity,
            conversation_id=conversation.pk,
            content=question,
            history=[(turn.role, turn.content) for turn in history],
        )


def api_chat_continue(
    *, identity: Identity, conversation_id: Any, model: str, turns: Sequence[ChatTurn]
) -> GenerationRequest:
    """The next question in one of the user's conversations: the last message of `turns`
    (the user's), sent under the conversation's latest answer on `model`; the stored
    messages are the history, so the earlier `turns` are not stored again."""
    _, _, question = _split(turns)
    conversation = conversation_get(identity=identity, conversation_id=conversation_id)
    latest = answer_latest(conversation=conversation)
    return message_send(
        identity=identity,
        conversation_id=conversation.pk,
        content=question,
        parent_id=latest.pk if latest is not None else None,
        model=model,
    )
