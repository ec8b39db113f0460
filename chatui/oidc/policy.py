"""Who may log in through the provider and who is an admin: pure functions of the claims.

An e-mail address counts only when the provider does not say it is unverified (chat-ui's
rule: `email_verified` absent counts as verified). Imports no Django and no other module
of the app, so the rules are tested on plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.openid import OpenIDSettings

NOT_ALLOWED = (
    "The account {email} is not allowed to use this app. "
    "Ask its administrator for access, or log in with another account."
)
NO_EMAIL = (
    "This app admits only some accounts, and the identity provider did not share a verified "
    "e-mail address for yours. Ask its administrator for access."
)


def verified_email(claims: Mapping[str, Any]) -> str:
    """The claims' e-mail address in lower case, or "" when absent or unverified."""
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is False:
        return ""
    return email.strip().lower()


def login_refusal(claims: Mapping[str, Any], openid: OpenIDSettings) -> str | None:
    """Why these claims may not log in (a message for the visitor), or None when they may:
    with ALLOWED_USER_EMAILS or ALLOWED_USER_DOMAINS set, the e-mail must match one."""
    if not openid.allowed_emails and not openid.allowed_domains:
        return None
    email = verified_email(claims)
    if not email:
        return NO_EMAIL
    domain = email.rpartition("@")[2]
    if email in openid.allowed_emails or domain in openid.allowed_domains:
        return None
    return NOT_ALLOWED.format(email=email)


def is_admin(claims: Mapping[str, Any], openid: OpenIDSettings) -> bool:
    """ADMIN_USERS names the `sub` or the verified e-mail; or OPENID_ADMIN_CLAIM (a string or
    a list, e.g. `groups`) holds one of OPENID_ADMIN_VALUES."""
    admins = {name.lower() for name in openid.admin_users}
    subject = str(claims.get("sub", ""))
    if subject and (subject in openid.admin_users or verified_email(claims) in admins - {""}):
        return True
    if not openid.admin_claim or not openid.admin_values:
        return False
    value = claims.get(openid.admin_claim)
    held = value if isinstance(value, list) else [value]
    return any(isinstance(item, str) and item in openid.admin_values for item in held)
