"""The session engine (SESSION_ENGINE): Django's database sessions, with stricter session keys.

Django only checks a cookie's session key for length before it looks the key up; a cookie may
carry a NUL (`"abcdefgh\\000"` is a valid quoted cookie), which Postgres refuses with an error,
so any page would answer 500. Keys Django makes are lowercase letters and digits; any other is
treated as no session at all.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

MIN_KEY_LENGTH = 8  # Django's own rule


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        return bool(key) and len(key) >= MIN_KEY_LENGTH and key.isascii() and key.isalnum()
