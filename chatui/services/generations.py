"""The bookkeeping of an answer being generated (`chatui.streaming` calls these): batched
saves with their heartbeat, the tools it called, the final save, and the reaping of answers
whose process died.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from django.utils import timezone

from chatui.models import (
    Message,
)


def message_save_partial(*, message_id: Any, content: str, generated_tokens: int) -> bool:
    """A batched save of the text so far, and the heartbeat that proves the task is alive.
    False when the answer is gone or no longer generating (deleted, reaped): stop then."""
    now = timezone.now()
    updated = Message.objects.filter(pk=message_id, is_generating=True).update(
        content=content, generated_tokens=generated_tokens, heartbeat_at=now, updated_at=now
    )
    return bool(updated)


def message_set_tool_calls(*, message_id: Any, tool_calls: list[dict[str, Any]]) -> bool:
    """The tools an answer called so far (saved after each step); False when it is gone."""
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
