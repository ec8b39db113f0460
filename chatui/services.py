"""Writes: conversations, messages, settings, shares, and the generation bookkeeping.

Named `<entity>_<action>(*, ...)`. Each function validates (raising `ChatError` with one of
the messages below), checks usage limits, and writes in one transaction. Synchronous: async
callers wrap them in `database_sync_to_async`. Must not import consumers, views or endpoints.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from chatui import limits, uploads
from chatui.attachments import (
    PromptFile,
    attachments_continue,
    attachments_link,
    attachments_share,
    prompt_files,
)
from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import (
    ASSISTANT_DESCRIPTION_MAX_LENGTH,
    ASSISTANT_NAME_MAX_LENGTH,
    DEFAULT_TITLE,
    MAX_STARTERS,
    TITLE_MAX_LENGTH,
    Assistant,
    Conversation,
    Message,
    SharedConversation,
    UserSettings,
)
from chatui.selectors import (
    ASSISTANT_NOT_FOUND,
    CONVERSATION_NOT_FOUND,
    conversation_detail,
    conversation_get,
    message_get,
    message_path,
    settings_find,
)
from chatui.validation import describe

UNKNOWN_MODEL = "Unknown model: {model}."
TITLE_INVALID = f"The title must be 1 to {TITLE_MAX_LENGTH} characters."
THEME_INVALID = "The theme must be one of: light, dark, system."
CUSTOM_PROMPTS_INVALID = "custom_prompts must map model ids to strings."
SYSTEM_PROMPT_INVALID = "The system prompt must be a string."
ALREADY_GENERATING = "An answer is already being generated in this conversation."
INVALID_PARENT = "A new message must follow an answer (or start the conversation)."
NOT_A_USER_MESSAGE = "Only your own messages can be edited."
NOT_AN_ANSWER = "Only answers can be continued."
NOT_REGENERABLE = "Only answers (or your own messages) can be regenerated."
EMPTY_SHARE = "There is nothing to share yet."
ASSISTANT_NAME_INVALID = f"The name must be 1 to {ASSISTANT_NAME_MAX_LENGTH} characters."
ASSISTANT_DESCRIPTION_INVALID = (
    f"The description must be at most {ASSISTANT_DESCRIPTION_MAX_LENGTH} characters."
)
STARTERS_INVALID = f"At most {MAX_STARTERS} conversation starters, each of 1 to 500 characters."
AVATAR_NOT_AN_IMAGE = "The avatar must be an image (PNG, JPEG, GIF or WebP)."
ASSISTANT_MODEL_GONE = "This assistant's model is no longer available."
SCORE_INVALID = "The score must be 1 (thumbs up), -1 (thumbs down) or 0 (none)."
NOT_SCORABLE = "Only answers can be rated."


def _listed_model_id(model: Any) -> str:
    config = get_chat_config()
    listed = {m.id for m in config.listed_models}
    if not isinstance(model, str) or model not in listed:
        raise ChatError(UNKNOWN_MODEL.format(model=describe(model)))
    return model


def _default_system_prompt(*, identity: Identity, model_id: str) -> str:
    settings = settings_find(identity=identity)
    custom = (settings.custom_prompts or {}).get(model_id) if settings else None
    if custom:
        return custom
    return get_chat_config().model(model_id).preprompt or ""


# --- conversations ---------------------------------------------------------------------------


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
            model, system_prompt = _listed_model_id(assistant.model), assistant.system_prompt
        except ChatError:
            raise ChatError(ASSISTANT_MODEL_GONE) from None
    model_id = _listed_model_id(model) if model is not None else active_model_id(identity=identity)
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
    if model is not None:
        conversation.model = _listed_model_id(model)
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
    updated = Conversation.objects.filter(pk=conversation_id, title=DEFAULT_TITLE).update(
        title=title
    )
    return title if updated else ""


def conversation_share(*, identity: Identity, conversation: Conversation) -> SharedConversation:
    """A frozen copy (its files too): later messages or deletion do not change what the link
    shows."""

    snapshot = conversation_detail(conversation=conversation)
    if not snapshot["messages"]:
        raise ChatError(EMPTY_SHARE)
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


# --- assistants ----------------------------------------------------------------------------


def _clean_starters(starters: Any) -> list[str]:
    if not isinstance(starters, list | tuple) or not all(isinstance(s, str) for s in starters):
        raise ChatError(STARTERS_INVALID)
    cleaned = [s.strip() for s in starters if s.strip()]
    if len(cleaned) > MAX_STARTERS or any(len(s) > 500 for s in cleaned):
        raise ChatError(STARTERS_INVALID)
    return cleaned


def _avatar_file(avatar: Any) -> tuple[ContentFile, str]:
    """An uploaded avatar, checked by its content (an image within the size limit)."""
    from django.conf import settings

    name = uploads.clean_name(getattr(avatar, "name", "") or "avatar")
    uploads.check_size(
        name=name, kind="image", size=avatar.size, limit=settings.CHATUI_AVATAR_MAX_BYTES
    )
    data = avatar.read()
    try:
        sniffed = uploads.sniff(data, name)
    except ChatError:
        raise ChatError(AVATAR_NOT_AN_IMAGE) from None
    if sniffed.kind != "image":
        raise ChatError(AVATAR_NOT_AN_IMAGE)
    return ContentFile(data, name=f"avatar.{sniffed.mime.split('/')[1]}"), sniffed.mime


def assistant_save(
    *,
    user: Any,
    assistant: Assistant | None = None,
    name: Any,
    description: Any = "",
    model: Any,
    system_prompt: Any = "",
    starters: Any = (),
    avatar: Any = None,
    remove_avatar: bool = False,
) -> Assistant:
    """Creates (`assistant` None) or updates the user's assistant; refuses others' (404)."""
    if assistant is not None and assistant.user_id != getattr(user, "pk", None):
        raise ChatError(ASSISTANT_NOT_FOUND, status=404)
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= ASSISTANT_NAME_MAX_LENGTH:
        raise ChatError(ASSISTANT_NAME_INVALID)
    if not isinstance(description, str) or len(description) > ASSISTANT_DESCRIPTION_MAX_LENGTH:
        raise ChatError(ASSISTANT_DESCRIPTION_INVALID)
    if not isinstance(system_prompt, str):
        raise ChatError(SYSTEM_PROMPT_INVALID)
    assistant = assistant or Assistant(user=user)
    assistant.name, assistant.description = name.strip(), description.strip()
    assistant.model = _listed_model_id(model)
    assistant.system_prompt = system_prompt
    assistant.starters = _clean_starters(starters)
    old_avatar = assistant.avatar.name if assistant.avatar else ""
    if avatar is not None:
        content, assistant.avatar_mime = _avatar_file(avatar)
        assistant.avatar.save(content.name, content, save=False)
    elif remove_avatar:
        assistant.avatar, assistant.avatar_mime = "", ""
    assistant.save()
    if old_avatar and old_avatar != assistant.avatar.name:
        assistant.avatar.storage.delete(old_avatar)
    return assistant


def assistant_delete(*, user: Any, assistant: Assistant) -> None:
    """The owner deletes an assistant; its conversations stay (they keep model and prompt)."""
    if assistant.user_id != getattr(user, "pk", None):
        raise ChatError(ASSISTANT_NOT_FOUND, status=404)
    assistant.delete()


# --- settings ------------------------------------------------------------------------------


def settings_update(
    *,
    identity: Identity,
    active_model: Any = None,
    custom_prompts: Any = None,
    theme: Any = None,
) -> UserSettings:
    """Changes the given fields of the identity's settings (creating the row on first use).

    NOTE: only the fields given here are written, and the row is locked while the custom
    prompts are merged, so two overlapping updates of different fields (a model picked while a
    prompt is saved) both survive instead of the later save writing back the earlier row."""
    changed: list[str] = []
    with transaction.atomic():
        settings = _settings_for_update(identity)
        if active_model is not None:
            settings.active_model = _listed_model_id(active_model)
            changed.append("active_model")
        if custom_prompts is not None:
            if not isinstance(custom_prompts, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in custom_prompts.items()
            ):
                raise ChatError(CUSTOM_PROMPTS_INVALID)
            known = {m.id for m in get_chat_config().models}
            unknown = sorted(set(custom_prompts) - known)
            if unknown:
                raise ChatError(UNKNOWN_MODEL.format(model=describe(unknown[0])))
            merged = dict(settings.custom_prompts or {})
            merged.update(custom_prompts)
            settings.custom_prompts = {k: v for k, v in merged.items() if v}
            changed.append("custom_prompts")
        if theme is not None:
            if theme not in UserSettings.Theme.values:
                raise ChatError(THEME_INVALID)
            settings.theme = theme
            changed.append("theme")
        if changed:
            settings.save(update_fields=[*changed, "updated_at"])
    return settings


def _settings_for_update(identity: Identity) -> UserSettings:
    """The identity's settings row, locked until the transaction ends; created if missing (a
    concurrent first update that created it first wins the insert, and its row is used)."""
    rows = UserSettings.objects.select_for_update().filter(identity.owner_q())
    settings = rows.first()
    if settings is not None:
        return settings
    try:
        with transaction.atomic():
            return UserSettings.objects.create(**identity.owner_fields())
    except IntegrityError:
        return rows.get()


def owner_transfer(*, anon_key: str, user: Any) -> None:
    """Login: the anonymous visitor's conversations, shares and settings become the user's."""
    with transaction.atomic():
        Conversation.objects.filter(user__isnull=True, anon_key=anon_key).update(
            user=user, anon_key=""
        )
        SharedConversation.objects.filter(user__isnull=True, anon_key=anon_key).update(
            user=user, anon_key=""
        )
        anonymous = UserSettings.objects.filter(user__isnull=True, anon_key=anon_key).first()
        if anonymous is None:
            return
        if UserSettings.objects.filter(user=user).exists():
            anonymous.delete()  # the account's own settings win
        else:
            anonymous.user, anonymous.anon_key = user, ""
            anonymous.save()


# --- messages and generation bookkeeping ---------------------------------------------------


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
) -> GenerationRequest:
    """A user message under `parent_id` (None: a new root) and the empty answer to stream;
    `attachments`: ids of files uploaded to the conversation, now linked to the message."""

    config = get_chat_config()
    content = content if isinstance(content, str) else ""
    limits.check_message_length(identity=identity, content=content, config=config)
    with transaction.atomic():
        conversation = _locked_conversation(identity=identity, conversation_id=conversation_id)
        parent = None
        if parent_id:
            parent = message_get(conversation=conversation, message_id=parent_id)
            if parent.role == Message.Role.USER:
                raise ChatError(INVALID_PARENT)
        limits.check_new_message(identity=identity, conversation=conversation, config=config)
        if model is not None and model != conversation.model:
            conversation.model = _listed_model_id(model)
            conversation.save(update_fields=["model"])
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


def message_save_partial(*, message_id: Any, content: str, generated_tokens: int) -> bool:
    """A batched save of the text so far, and the heartbeat that proves the task is alive.
    False when the answer is gone or no longer generating (deleted, reaped): stop then."""
    now = timezone.now()
    updated = Message.objects.filter(pk=message_id, is_generating=True).update(
        content=content, generated_tokens=generated_tokens, heartbeat_at=now, updated_at=now
    )
    return bool(updated)


def message_set_tool_calls(*, message_id: Any, tool_calls: list[dict[str, Any]]) -> bool:
    """The tools an answer called (before its text streams); False when it is gone."""
    return bool(Message.objects.filter(pk=message_id).update(tool_calls=tool_calls))


def message_finish(
    *,
    message_id: Any,
    content: str,
    finish_reason: str = "",
    interrupted: bool = False,
    error: str = "",
    generated_tokens: int = 0,
    prompt_tokens: int | None = None,
) -> Message | None:
    """The answer as it ends (done, stopped or failed): one UPDATE, then the stored row
    (None when it was deleted meanwhile)."""
    now = timezone.now()
    Message.objects.filter(pk=message_id).update(
        content=content,
        finish_reason=finish_reason or "",
        interrupted=interrupted,
        error=error,
        generated_tokens=generated_tokens,
        prompt_tokens=prompt_tokens,
        is_generating=False,
        heartbeat_at=None,
        updated_at=now,
    )
    return Message.objects.filter(pk=message_id).first()


def message_reap_stale(
    *, max_age_s: float, conversation_id: Any = None, exclude_ids: Collection[str] = ()
) -> list[Message]:
    """Answers whose generating process died (no heartbeat for `max_age_s`): interrupted.
    `exclude_ids`: the caller's own running answers (alive, whatever their heartbeat says:
    it may have missed beats while the database was away)."""
    stale = Message.objects.filter(
        is_generating=True, heartbeat_at__lt=timezone.now() - timedelta(seconds=max_age_s)
    ).exclude(pk__in=list(exclude_ids))
    if conversation_id is not None:
        stale = stale.filter(conversation_id=conversation_id)
    ids = list(stale.values_list("pk", flat=True))
    if not ids:
        return []
    Message.objects.filter(pk__in=ids, is_generating=True).update(
        is_generating=False, interrupted=True, heartbeat_at=None, updated_at=timezone.now()
    )
    return list(Message.objects.filter(pk__in=ids))
