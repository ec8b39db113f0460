"""Who is asking: a logged-in user, or an anonymous visitor known by a key in their session.

The anonymous key lives in the session *data* (not the session key), so it survives the key
rotation Django performs at login; `chatui.signals` then moves that visitor's conversations
and settings to the account. A visitor gets a key (and so a session row and
cookie) only when they first write something; until then they are a keyless identity that owns
nothing. Imports no other module of the app (services and signals import it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.http import HttpRequest

ANON_SESSION_KEY = "chatui_anon_key"


@dataclass(frozen=True)
class Identity:
    """The owner of rows: at most one of `user_id` / `anon_key` is set; with neither, an
    anonymous visitor who has not written anything yet and owns no row."""

    user_id: int | None = None
    anon_key: str = ""

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    def owner_q(self, prefix: str = "") -> Q:
        """Filter matching rows this identity owns (`prefix` e.g. "conversation__")."""
        if self.user_id is not None:
            return Q(**{f"{prefix}user_id": self.user_id})
        if not self.anon_key:
            return Q(**{f"{prefix}pk__in": []})  # NOTE: never rows whose anon_key is ""
        return Q(**{f"{prefix}user__isnull": True, f"{prefix}anon_key": self.anon_key})

    def owner_fields(self) -> dict[str, Any]:
        """Field values that make a new row belong to this identity."""
        if self.user_id is None and not self.anon_key:
            raise ValueError("a keyless identity cannot own rows (use create=True)")
        if self.user_id is not None:
            return {"user_id": self.user_id, "anon_key": ""}
        return {"user_id": None, "anon_key": self.anon_key}


def identity_from_request(request: HttpRequest, *, create: bool = True) -> Identity:
    """The request's identity. `create`: give an anonymous visitor a key (and so a session) if
    they have none; else such a visitor stays keyless, so a read creates no session row."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Identity(user_id=user.pk)
    anon_key = request.session.get(ANON_SESSION_KEY)
    if not anon_key and not create:
        return Identity()
    if not anon_key:
        anon_key = secrets.token_urlsafe(24)
        request.session[ANON_SESSION_KEY] = anon_key
    return Identity(anon_key=anon_key)


def identity_from_scope(scope: dict[str, Any]) -> Identity | None:
    """A websocket scope's identity, or None when the visitor never got one (sync: reads
    the session)."""
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return Identity(user_id=user.pk)
    session = scope.get("session")
    anon_key = session.get(ANON_SESSION_KEY) if session is not None else None
    return Identity(anon_key=anon_key) if anon_key else None
