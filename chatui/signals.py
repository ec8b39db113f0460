"""Signal handlers: logging in keeps what the visitor did anonymously.

Connected by `ChatuiConfig.ready()`. The anonymous key lives in the session data, so it
survives the key rotation Django performs at login (`chatui.identity`).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from chatui.identity import ANON_SESSION_KEY
from chatui.services import owner_transfer


@receiver(user_logged_in, dispatch_uid="chatui_move_anonymous_data")
def move_anonymous_data(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """The visitor's conversations and settings move to the account they logged in to."""
    if request is None or not hasattr(request, "session"):
        return
    anon_key = request.session.pop(ANON_SESSION_KEY, None)
    if anon_key:
        owner_transfer(anon_key=anon_key, user=user)
