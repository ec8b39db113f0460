"""Settings writes: the active model, custom system prompts per model, and the theme.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import (
    UserSettings,
)
from chatui.services.common import UNKNOWN_MODEL, listed_model_id
from chatui.validation import describe

THEME_INVALID = "The theme must be one of: light, dark, system."


CUSTOM_PROMPTS_INVALID = "custom_prompts must map model ids to strings."


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
            settings.active_model = listed_model_id(active_model)
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
