"""Personal API tokens: create (the secret shown once), revoke, and authenticate a bearer.

A token reads `ct_<key id><secret>`: 12 hex characters that find the row (`ApiToken.key_id`),
then 43 URL-safe characters (256 random bits). Only an HMAC-SHA256 of the whole token is
stored, keyed from SECRET_KEY (`salted_hmac`): a fast hash is enough for a secret with that
much entropy, and a copy of the database alone cannot check guesses. Comparison is constant
time. Changing SECRET_KEY invalidates every token.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.crypto import salted_hmac

from chatui.errors import ChatError
from chatui.models import TOKEN_NAME_MAX_LENGTH, ApiToken

TOKEN_PREFIX = "ct_"
KEY_ID_CHARS = 12
SECRET_BYTES = 32
HMAC_SALT = "chatui.api_tokens"
# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
TOKEN_PATTERN = re.compile(rf"{TOKEN_PREFIX}[0-9a-f]{{{KEY_ID_CHARS}}}[A-Za-z0-9_-]{{43}}")
# `last_used_at` is written at most this often per token (not one UPDATE per request).
LAST_USED_RESOLUTION = timedelta(minutes=1)

TOKEN_NAME_INVALID = f"A token's name must be 1 to {TOKEN_NAME_MAX_LENGTH} characters."
TOKENS_NEED_LOGIN = "Log in to create and manage API tokens."
TOKEN_NOT_FOUND = "Token not found."


def token_digest(raw: str) -> str:
    """The stored form of a token: a hex HMAC-SHA256 keyed from SECRET_KEY."""
    return salted_hmac(HMAC_SALT, raw, algorithm="sha256").hexdigest()


def _new_raw_token() -> tuple[str, str]:
    key_id = secrets.token_hex(KEY_ID_CHARS // 2)
    return key_id, f"{TOKEN_PREFIX}{key_id}{secrets.token_urlsafe(SECRET_BYTES)}"


def _require_user(user: Any) -> None:
    if user is None or not user.is_authenticated:
        raise ChatError(TOKENS_NEED_LOGIN, status=403)


def api_token_create(*, user: Any, name: Any) -> tuple[ApiToken, str]:
    """A new token of `user` and its secret, which is never stored nor shown again."""
    _require_user(user)
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= TOKEN_NAME_MAX_LENGTH:
        raise ChatError(TOKEN_NAME_INVALID)
    key_id, raw = _new_raw_token()
    token = ApiToken.objects.create(
        user=user, name=name.strip(), key_id=key_id, digest=token_digest(raw)
    )
    return token, raw


def api_token_revoke(*, user: Any, token_id: Any) -> ApiToken:
    """Revokes one of `user`'s tokens (anyone else's is not found); it stops working at once."""
    _require_user(user)
    try:
        token = ApiToken.objects.get(pk=token_id, user=user)
    except (ApiToken.DoesNotExist, ValueError, TypeError, ValidationError):
        raise ChatError(TOKEN_NOT_FOUND, status=404) from None
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The live token `raw` is, with its user loaded (and `last_used_at` recorded); None for
    anything else: malformed, unknown, wrong secret, revoked, or an inactive user."""
    if TOKEN_PATTERN.fullmatch(raw) is None:  # never a query for what cannot be a token
        return None
    key_id = raw[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + KEY_ID_CHARS]
    token = ApiToken.objects.select_related("user").filter(key_id=key_id).first()
    # NOTE: the digest is computed and compared even for an unknown key id, so the answer
    # takes as long whether or not the key id exists.
    expected = token.digest if token is not None else "0" * 64
    if not hmac.compare_digest(token_digest(raw), expected) or token is None:
        return None
    if token.revoked_at is not None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
