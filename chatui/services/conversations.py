"""Conversation writes: create (from a model or an assistant), rename, change model or system
prompt, delete, the generated title, share as a frozen copy, and continue a shared one.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from chatui import limits
from chatui.attachments import (
    attachments_continue,
    attachments_share,
)
from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import (
    TITLE_MAX_LENGTH,
    Assistant,
    Conversation,
    Message,
    SharedConversation,
)
from chatui.selectors import (
    conversation_detail,
    settings_find,
)
from chatui.services.common import SYSTEM_PROMPT_INVALID, listed_model_id

TITLE_INVALID = f"The title must be 1 to {TITLE_MAX_LENGTH} characters."


EMPTY_SHARE = "There is nothing to share yet."
SHARE_LEAF_UNKNOWN = "The message to share up to is not in this conversation."


ASSISTANT_MODEL_GONE = "This assistant's model is no longer available."


def _default_system_prompt(*, identity: Identity, model_id: str) -> str:
    settings = settings_find(identity=identity)
    custom = (settings.custom_prompts or {}).get(model_id) if settings else None
    if custom:
        return custom
    return get_chat_config().model(model_id).preprompt or ""


def conversation_create(
    *,
    identity: Identity,
    model: str | None = None,
    system_prompt: str | None = None,
    assistant: Assistant | None = None,
) -> Conversation:
    """A new conversation; with `assistant`, on its model and with its system prompt."""
    from chatui.selectors import active_model_id

    config = get_chat_config()
    if assistant is not None:
        try:
            model, system_prompt = listed_model_id(assistant.model), assistant.system_prompt
        except ChatError:
            raise ChatError(ASSISTANT_MODEL_GONE) from None
    model_id = listed_model_id(model) if model is not None else active_model_id(identity=identity)
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise ChatError(SYSTEM_PROMPT_INVALID)
    limits.check_new_conversation(identity=identity, config=config)
    if system_prompt is None:
        system_prompt = _default_system_prompt(identity=identity, model_id=model_id)
    return Conversation.objects.create(
        model=model_id,
        system_prompt=system_prompt,
        assistant=assistant,
        **identity.owner_fields(),
    )


def conversation_update(
    *,
    conversation: Conversation,
    title: Any = None,
    model: Any = None,
    system_prompt: Any = None,
) -> Conversation:
    if title is not None:
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= TITLE_MAX_LENGTH:
            raise ChatError(TITLE_INVALID)
        conversation.title = title.strip()
        conversation.is_title_custom = True
    if model is not None:
        conversation.model = listed_model_id(model)
    if system_prompt is not None:
        if not isinstance(system_prompt, str):
            raise ChatError(SYSTEM_PROMPT_INVALID)
        conversation.system_prompt = system_prompt
    conversation.save()
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def conversation_delete_all(*, identity: Identity) -> int:
    deleted, _ = Conversation.objects.filter(identity.owner_q()).delete()
    return deleted


def conversation_set_title(*, conversation_id: Any, title: str) -> str:
    """The generated title, unless the user renamed the conversation meanwhile ("" then)."""
    title = " ".join(title.split())[:TITLE_MAX_LENGTH]
    if not title:
        return ""
    updated = Conversation.objects.filter(pk=conversation_id, is_title_custom=False).update(
        title=title
    )
    return title if updated else ""


def conversation_share(
    *, identity: Identity, conversation: Conversation, leaf_id: Any = None
) -> SharedConversation:
    """A frozen copy (its files too): later messages or deletion do not change what the link
    shows. `leaf_id`, the last message on the sharer's screen, is kept as `leaf_id` so the
    shared page opens on the branch that was shared, not on the newest one."""

    snapshot = conversation_detail(conversation=conversation)
    if not snapshot["messages"]:
        raise ChatError(EMPTY_SHARE)
    if leaf_id is not None:
        if not any(str(leaf_id) == m["id"] for m in snapshot["messages"]):
            raise ChatError(SHARE_LEAF_UNKNOWN)
        snapshot["leaf_id"] = str(leaf_id)
    for message in snapshot["messages"]:
        message["is_generating"] = False
    with transaction.atomic():
        share = SharedConversation.objects.create(
            conversation=conversation,
            title=conversation.title,
            model=conversation.model,
            snapshot=snapshot,
            **identity.owner_fields(),
        )
        attachments_share(conversation=conversation, share=share)
    return share


def shared_continue(*, identity: Identity, share: SharedConversation) -> Conversation:
    """The visitor's own conversation holding a copy of the shared messages (and files)."""

    config = get_chat_config()
    limits.check_new_conversation(identity=identity, config=config)
    snapshot = share.snapshot or {}
    with transaction.atomic():
        assistant_id = (snapshot.get("assistant") or {}).get("id")
        conversation = Conversation.objects.create(
            model=config.model(share.model).id,
            title=share.title,
            system_prompt=snapshot.get("system_prompt", ""),
            assistant=Assistant.objects.filter(pk=assistant_id).first() if assistant_id else None,
            **identity.owner_fields(),
        )
        new_ids: dict[str, Message] = {}
        for data in snapshot.get("messages", []):
            message = Message.objects.create(
                conversation=conversation,
                parent=new_ids.get(data.get("parent_id") or ""),
                role=data["role"],
                content=data.get("content", ""),
                model=data.get("model") or "",
                finish_reason=data.get("finish_reason") or "",
                interrupted=bool(data.get("interrupted")),
                error=data.get("error") or "",
                tool_calls=data.get("tool_calls") or [],
            )
            new_ids[data["id"]] = message
        attachments_continue(share=share, conversation=conversation, new_ids=new_ids)
    return conversation
