"""Owner transfer: at login, what an anonymous visitor made becomes the user's.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from chatui.models import (
    Conversation,
    SharedConversation,
    UserSettings,
)


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
