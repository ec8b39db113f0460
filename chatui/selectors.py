"""Reads: conversations, messages and settings as the owner may see them.

Every lookup of a conversation goes through `conversation_get`, which only finds the
identity's own rows (someone else's conversation is "not found"). Must not write, nor
import the websocket layer (consumers, routing, `chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import (
    ApiToken,
    Assistant,
    Conversation,
    Message,
    SharedConversation,
    UserSettings,
)
from chatui.serializers import (
    api_token_to_dict,
    conversation_summary,
    conversation_to_dict,
    file_export,
    settings_to_dict,
)

CONVERSATION_NOT_FOUND = "Conversation not found."
MESSAGE_NOT_FOUND = "Message not found."
SHARE_NOT_FOUND = "Shared conversation not found."
ASSISTANT_NOT_FOUND = "Assistant not found."


def conversation_get(*, identity: Identity, conversation_id: Any) -> Conversation:
    try:
        return (
            Conversation.objects.filter(identity.owner_q())
            .select_related("assistant")
            .get(pk=conversation_id)
        )
    except (Conversation.DoesNotExist, ValueError, ValidationError):
        raise ChatError(CONVERSATION_NOT_FOUND, status=404) from None


def conversation_list(*, identity: Identity, query: str = "") -> QuerySet[Conversation]:
    """The sidebar: newest first; `query` matches titles and message contents."""
    generating = Message.objects.filter(conversation=OuterRef("pk"), is_generating=True)
    conversations = Conversation.objects.filter(identity.owner_q()).annotate(
        is_generating=Exists(generating)
    )
    query = query.strip()
    if query:
        matching = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=query)
        conversations = conversations.filter(Q(title__icontains=query) | Exists(matching))
    return conversations.order_by("-updated_at")


def conversation_list_data(*, identity: Identity, query: str = "") -> list[dict[str, Any]]:
    return [
        conversation_summary(c, is_generating=c.is_generating)
        for c in conversation_list(identity=identity, query=query)
    ]


def message_list(*, conversation: Conversation) -> list[Message]:
    """Every message of the tree, in creation order."""
    return list(conversation.messages.prefetch_related("attachments").order_by("created_at", "id"))


def conversation_detail(*, conversation: Conversation) -> dict[str, Any]:
    return conversation_to_dict(conversation, message_list(conversation=conversation))


def conversation_export(*, identity: Identity) -> dict[str, Any]:
    conversations = (
        Conversation.objects.filter(identity.owner_q())
        .select_related("assistant")
        .order_by("-updated_at")
    )
    messages: dict[Any, list[Message]] = {}
    for message in (
        Message.objects.filter(conversation__in=conversations)
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    ):
        messages.setdefault(message.conversation_id, []).append(message)
    exported = [conversation_to_dict(c, messages.get(c.id, [])) for c in conversations]
    files = {
        str(m.pk): [file_export(a) for a in m.attachments.all()]
        for conversation_messages in messages.values()
        for m in conversation_messages
    }
    for conversation in exported:
        for message in conversation["messages"]:
            message["files"] = files.get(message["id"], [])
    return {"conversations": exported}


def message_get(*, conversation: Conversation, message_id: Any) -> Message:
    try:
        return conversation.messages.get(pk=message_id)
    except (Message.DoesNotExist, ValueError, TypeError, ValidationError):
        raise ChatError(MESSAGE_NOT_FOUND, status=404) from None


def answer_latest(*, conversation: Conversation) -> Message | None:
    """The conversation's newest answer (where a script's next question goes), or None."""
    answers = conversation.messages.filter(role=Message.Role.ASSISTANT)
    return answers.order_by("-created_at", "-id").first()


def message_path(*, message: Message) -> list[Message]:
    """Root -> `message` (inclusive), following parents; one query."""
    by_id = {m.id: m for m in message.conversation.messages.all()}
    path: list[Message] = []
    current: Message | None = by_id.get(message.id, message)
    while current is not None:
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    path.reverse()
    return path


def shared_get(*, share_id: str) -> SharedConversation:
    """Any string from a URL: one that cannot be a share id (a NUL, which the database refuses,
    or past the column's length) is simply not found."""
    if "\x00" in share_id or len(share_id) > SharedConversation._meta.pk.max_length:
        raise ChatError(SHARE_NOT_FOUND, status=404)
    try:
        return SharedConversation.objects.get(pk=share_id)
    except SharedConversation.DoesNotExist:
        raise ChatError(SHARE_NOT_FOUND, status=404) from None


def feedback_list(*, score: Any = None, model: str = "") -> QuerySet[Message]:
    """Rated answers (thumbs up or down), newest first, with their question and conversation."""
    rated = (
        Message.objects.filter(role=Message.Role.ASSISTANT)
        .exclude(score=Message.Score.NONE)
        .select_related("parent", "conversation")
    )
    if score is not None:
        rated = rated.filter(score=score)
    if model:
        rated = rated.filter(model=model)
    return rated.order_by("-updated_at")


def feedback_record(message: Message) -> dict[str, Any]:
    """One JSONL line of the feedback export: what someone tuning the model needs."""
    return {
        "prompt": message.parent.content if message.parent_id else "",
        "answer": message.content,
        "score": message.score,
        "model": message.model,
        "system_prompt": message.conversation.system_prompt,
        "conversation_id": str(message.conversation_id),
        "message_id": str(message.id),
        "created_at": message.created_at.isoformat(),
    }


def assistant_list(*, query: str = "", user: Any = None) -> QuerySet[Assistant]:
    """The assistants page: featured first, then newest; `query` matches names and
    descriptions; `user`: only theirs. Each with `num_conversations` (its use)."""
    assistants = Assistant.objects.select_related("user").annotate(
        num_conversations=Count("conversations")
    )
    query = query.strip()
    if query:
        assistants = assistants.filter(Q(name__icontains=query) | Q(description__icontains=query))
    if user is not None:
        assistants = assistants.filter(user=user)
    return assistants.order_by("-is_featured", "-created_at")


def assistant_get(*, assistant_id: Any) -> Assistant:
    """Any assistant, by id (an assistant is public to whoever has its link)."""
    try:
        return Assistant.objects.select_related("user").get(pk=assistant_id)
    except (Assistant.DoesNotExist, ValueError, ValidationError):
        raise ChatError(ASSISTANT_NOT_FOUND, status=404) from None


def settings_find(*, identity: Identity) -> UserSettings | None:
    return UserSettings.objects.filter(identity.owner_q()).first()


def active_model_id(*, identity: Identity, settings: UserSettings | None = None) -> str:
    """The user's active model if it is still listed, else the first listed model."""
    config = get_chat_config()
    listed = [m.id for m in config.listed_models]
    settings = settings if settings is not None else settings_find(identity=identity)
    if settings is not None and settings.active_model in listed:
        return settings.active_model
    return listed[0] if listed else config.models[0].id


def settings_detail(*, identity: Identity) -> dict[str, Any]:
    settings = settings_find(identity=identity) or UserSettings()
    return settings_to_dict(
        settings, active_model=active_model_id(identity=identity, settings=settings)
    )


def api_token_list(*, user: Any) -> list[dict[str, Any]]:
    """The settings' token list: the user's tokens, revoked ones included, newest first
    (never a secret: only its public key id)."""
    return [api_token_to_dict(t) for t in ApiToken.objects.filter(user=user)]


def message_token_counts(*, message_id: Any) -> tuple[int, int]:
    """(prompt tokens, generated tokens) of a stored answer, 0 where unknown."""
    row = Message.objects.filter(pk=message_id).values("prompt_tokens", "generated_tokens").first()
    if row is None:
        return 0, 0
    return row["prompt_tokens"] or 0, row["generated_tokens"] or 0
