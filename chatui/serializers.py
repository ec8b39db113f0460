"""Model rows -> the JSON shapes of docs/chat-protocol.md (`Conversation`, `Message`, Settings).

Pure functions over already-loaded rows: no queries of their own, no writes. Must not import
the websocket layer (consumers, routing, `chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from chatui.models import ApiToken, Assistant, Attachment, Conversation, Message, UserSettings


def file_to_dict(attachment: Attachment, *, url: str | None = None) -> dict[str, Any]:
    """A file attached to a message; `url` serves it to its owner (a share's copy: anyone)."""
    return {
        "id": str(attachment.pk),
        "name": attachment.name,
        "mime": attachment.mime,
        "kind": attachment.kind,
        "size": attachment.size,
        "url": url or f"/api/attachments/{attachment.pk}",
    }


def file_export(attachment: Attachment) -> dict[str, Any]:
    """A file as the JSON export holds it: its description and its bytes (base64)."""
    with attachment.file.open("rb") as handle:
        data = base64.b64encode(handle.read()).decode("ascii")
    return file_to_dict(attachment) | {"data": data}


def assistant_to_dict(assistant: Assistant) -> dict[str, Any]:
    """What a conversation shows of the assistant it runs (and the assistants page reads)."""
    return {
        "id": str(assistant.id),
        "name": assistant.name,
        "description": assistant.description,
        "model": assistant.model,
        "starters": list(assistant.starters or []),
        "avatar_url": f"/assistant/{assistant.id}/avatar" if assistant.avatar else None,
        "url": f"/assistant/{assistant.id}",
    }


def _loaded_files(message: Message) -> list[Attachment]:
    """The message's files when they were loaded (`prefetch_related("attachments")`); never a
    query (this runs in async code too): not loaded means none to show."""
    cache = getattr(message, "_prefetched_objects_cache", {})
    return list(cache.get("attachments", ()))


def message_to_dict(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "parent_id": str(message.parent_id) if message.parent_id else None,
        "role": message.role,
        "content": message.content,
        "model": message.model,
        "finish_reason": message.finish_reason or None,
        "interrupted": message.interrupted,
        "error": message.error or None,
        "tool_calls": message.tool_calls or [],
        "score": message.score,
        "files": [file_to_dict(a) for a in _loaded_files(message)],
        "is_generating": message.is_generating,
        "created_at": message.created_at.isoformat(),
        "updated_at": message.updated_at.isoformat(),
    }


def conversation_summary(conversation: Conversation, *, is_generating: bool) -> dict[str, Any]:
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "model": conversation.model,
        "updated_at": conversation.updated_at.isoformat(),
        "is_generating": is_generating,
    }


def conversation_to_dict(conversation: Conversation, messages: Iterable[Message]) -> dict[str, Any]:
    message_dicts = [message_to_dict(m) for m in messages]
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "assistant": assistant_to_dict(conversation.assistant) if conversation.assistant else None,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "is_generating": any(m["is_generating"] for m in message_dicts),
        "messages": message_dicts,
    }


def settings_to_dict(settings: UserSettings, *, active_model: str) -> dict[str, Any]:
    return {
        "active_model": active_model,
        "custom_prompts": dict(settings.custom_prompts or {}),
        "theme": settings.theme,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def api_token_to_dict(token: ApiToken) -> dict[str, Any]:
    """A personal API token as its owner sees it in settings (the secret is never here)."""
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": f"ct_{token.key_id}",
        "created_at": token.created_at.isoformat(),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
    }
