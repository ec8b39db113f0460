"""Message writes that start an answer (send, edit, regenerate, continue), each returning the
`GenerationRequest` the answer's task runs from, and the vote on an answer.

A conversation runs one answer at a time: each of these locks its row and refuses while an
answer is being generated.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from chatui import limits
from chatui.attachments import (
    PromptFile,
    attachments_link,
    prompt_files,
)
from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import (
    Conversation,
    Message,
)
from chatui.selectors import (
    CONVERSATION_NOT_FOUND,
    conversation_get,
    message_get,
    message_path,
)
from chatui.services.common import listed_model_id

ALREADY_GENERATING = "An answer is already being generated in this conversation."


INVALID_PARENT = "A new message must follow an answer (or start the conversation)."


NOT_A_USER_MESSAGE = "Only your own messages can be edited."


NOT_AN_ANSWER = "Only answers can be continued."


NOT_REGENERABLE = "Only answers (or your own messages) can be regenerated."


SCORE_INVALID = "The score must be 1 (thumbs up), -1 (thumbs down) or 0 (none)."


NOT_SCORABLE = "Only answers can be rated."


@dataclass(frozen=True)
class GenerationRequest:
    """What the generation task needs: the answer to write and the messages that lead to it,
    read in the request's own transaction (the task builds its prompt without a query)."""

    conversation_id: Any
    assistant_message: Message  # its `conversation` loaded
    new_messages: tuple[Message, ...]  # created by this request (user and/or assistant)
    path: tuple[Message, ...]  # root -> the answer
    continue_message: bool = False
    # The attached files of the path's messages, by message id (read here, in the request).
    files: dict[str, tuple[PromptFile, ...]] = field(default_factory=dict, hash=False)
    # The conversation's tools switch (the page's) and the user's tool settings
    # (`chatui.services.tool_settings`): set by the consumer.
    use_tools: bool = True
    tool_settings: dict[str, Any] = field(default_factory=dict, hash=False)


def _generation_request(
    answer: Message, new_messages: tuple[Message, ...], *, continue_message: bool = False
) -> GenerationRequest:
    path = tuple(message_path(message=answer))
    return GenerationRequest(
        answer.conversation_id,
        answer,
        new_messages,
        path,
        continue_message=continue_message,
        files=prompt_files(m for m in path if m.role == Message.Role.USER),
    )


def _locked_conversation(*, identity: Identity, conversation_id: Any) -> Conversation:
    """The owner's conversation, row-locked; refuses while an answer is being generated."""
    try:
        conversation = (
            Conversation.objects.select_for_update()
            .filter(identity.owner_q())
            .get(pk=conversation_id)
        )
    except (Conversation.DoesNotExist, ValueError, ValidationError):
        raise ChatError(CONVERSATION_NOT_FOUND, status=404) from None
    if conversation.messages.filter(is_generating=True).exists():
        raise ChatError(ALREADY_GENERATING, status=409)
    return conversation


def _new_answer(*, conversation: Conversation, parent: Message) -> Message:
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
    return Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=Message.Role.ASSISTANT,
        model=conversation.model,
        is_generating=True,
        heartbeat_at=now,
    )


def message_send(
    *,
    identity: Identity,
    conversation_id: Any,
    content: Any,
    parent_id: Any = None,
    model: Any = None,
    attachments: Any = None,
    history: Sequence[tuple[str, str]] = (),
) -> GenerationRequest:
    """A user message under `parent_id` (None: a new root) and the empty answer to stream;
    `attachments`: ids of files uploaded to the conversation, now linked to the message;
    `history`: (role, text) of an earlier exchange to store first, between the parent and
    the message (the chat API's messages), its user messages checked like this one."""

    config = get_chat_config()
    content = content if isinstance(content, str) else ""
    for role, text in [*history, (Message.Role.USER, content)]:
        if role == Message.Role.USER:
            limits.check_message_length(identity=identity, content=text, config=config)
    with transaction.atomic():
        conversation = _locked_conversation(identity=identity, conversation_id=conversation_id)
        parent = None
        if parent_id:
            parent = message_get(conversation=conversation, message_id=parent_id)
            if parent.role == Message.Role.USER:
                raise ChatError(INVALID_PARENT)
        limits.check_new_message(
            identity=identity, conversation=conversation, config=config, num_earlier=len(history)
        )
        if model is not None and model != conversation.model:
            conversation.model = listed_model_id(model)
            conversation.save(update_fields=["model"])
        for role, text in history:
            parent = Message.objects.create(
                conversation=conversation,
                parent=parent,
                role=role,
                content=text,
                model=conversation.model if role == Message.Role.ASSISTANT else "",
            )
        user_message = Message.objects.create(
            conversation=conversation, parent=parent, role=Message.Role.USER, content=content
        )
        attachments_link(conversation=conversation, message=user_message, ids=attachments)
        prefetch_related_objects([user_message], "attachments")  # for its `message` event
        answer = _new_answer(conversation=conversation, parent=user_message)
        return _generation_request(answer, (user_message, answer))


def message_edit(
    *, identity: Identity, conversation_id: Any, message_id: Any, content: Any
) -> GenerationRequest:
    """A sibling of user message `message_id` with new content, and its answer."""
    config = get_chat_config()
    content = content if isinstance(content, str) else ""
    limits.check_message_length(identity=identity, content=content, config=config)
    with transaction.atomic():
        conversation = _locked_conversation(identity=identity, conversation_id=conversation_id)
        original = message_get(conversation=conversation, message_id=message_id)
        if original.role != Message.Role.USER:
            raise ChatError(NOT_A_USER_MESSAGE)
        limits.check_new_message(identity=identity, conversation=conversation, config=config)
        user_message = Message.objects.create(
            conversation=conversation,
            parent_id=original.parent_id,
            role=Message.Role.USER,
            content=content,
        )
        answer = _new_answer(conversation=conversation, parent=user_message)
        return _generation_request(answer, (user_message, answer))


def message_regenerate(
    *, identity: Identity, conversation_id: Any, message_id: Any
) -> GenerationRequest:
    """A sibling of answer `message_id`, or (given a user message: Retry) a new answer to it."""
    config = get_chat_config()
    with transaction.atomic():
        conversation = _locked_conversation(identity=identity, conversation_id=conversation_id)
        target = message_get(conversation=conversation, message_id=message_id)
        if target.role == Message.Role.USER:
            question = target
        elif target.role == Message.Role.ASSISTANT and target.parent_id:
            question = message_get(conversation=conversation, message_id=target.parent_id)
        else:
            raise ChatError(NOT_REGENERABLE)
        limits.check_new_message(identity=identity, conversation=conversation, config=config)
        answer = _new_answer(conversation=conversation, parent=question)
        return _generation_request(answer, (answer,))


def message_continue(
    *, identity: Identity, conversation_id: Any, message_id: Any
) -> GenerationRequest:
    """Answer `message_id` goes on from where it stopped (extended in place)."""
    with transaction.atomic():
        conversation = _locked_conversation(identity=identity, conversation_id=conversation_id)
        answer = message_get(conversation=conversation, message_id=message_id)
        if answer.role != Message.Role.ASSISTANT:
            raise ChatError(NOT_AN_ANSWER)
        now = timezone.now()
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
        answer.is_generating, answer.heartbeat_at = True, now
        answer.interrupted, answer.error, answer.finish_reason = False, "", ""
        answer.model = conversation.model
        answer.save(
            update_fields=[
                "is_generating",
                "heartbeat_at",
                "interrupted",
                "error",
                "finish_reason",
                "model",
                "updated_at",
            ]
        )
        return _generation_request(answer, (), continue_message=True)


def message_set_score(
    *, identity: Identity, conversation_id: Any, message_id: Any, score: Any
) -> Message:
    """chat-ui's vote: the owner's thumbs up (1), down (-1) or neither (0) on an answer."""
    if isinstance(score, bool) or score not in Message.Score.values:
        raise ChatError(SCORE_INVALID)
    conversation = conversation_get(identity=identity, conversation_id=conversation_id)
    message = message_get(conversation=conversation, message_id=message_id)
    if message.role != Message.Role.ASSISTANT:
        raise ChatError(NOT_SCORABLE)
    message.score = score
    message.save(update_fields=["score", "updated_at"])
    return message
