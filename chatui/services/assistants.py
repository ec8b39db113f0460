"""Assistant writes: a user's assistants (name, model, system prompt, starters, avatar).

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from typing import Any

from django.core.files.base import ContentFile

from chatui import uploads
from chatui.errors import ChatError
from chatui.models import (
    ASSISTANT_DESCRIPTION_MAX_LENGTH,
    ASSISTANT_NAME_MAX_LENGTH,
    MAX_STARTERS,
    Assistant,
)
from chatui.selectors import (
    ASSISTANT_NOT_FOUND,
)
from chatui.services.common import SYSTEM_PROMPT_INVALID, listed_model_id

ASSISTANT_NAME_INVALID = f"The name must be 1 to {ASSISTANT_NAME_MAX_LENGTH} characters."


ASSISTANT_DESCRIPTION_INVALID = (
    f"The description must be at most {ASSISTANT_DESCRIPTION_MAX_LENGTH} characters."
)


STARTERS_INVALID = f"At most {MAX_STARTERS} conversation starters, each of 1 to 500 characters."


AVATAR_NOT_AN_IMAGE = "The avatar must be an image (PNG, JPEG, GIF or WebP)."


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
    assistant.model = listed_model_id(model)
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
