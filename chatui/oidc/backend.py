"""The authentication backend of sessions that logged in through the OpenID provider.

It checks no password (the provider did the authenticating), so it stays in
AUTHENTICATION_BACKENDS when local passwords are switched off; it loads the session's user
and answers permission checks as Django's ModelBackend does (the admin relies on them).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

OPENID_BACKEND = "chatui.oidc.backend.OpenIDBackend"


class OpenIDBackend(ModelBackend):
    """ModelBackend without `authenticate`: only `chatui.oidc.views` logs users in with it."""

    def authenticate(self, request: Any, username: Any = None, password: Any = None, **kw: Any):
        return None
