"""OpenID Connect login settings, read as chat-ui reads them, and who may log in.

chat-ui's variables: `OPENID_PROVIDER_URL`, `OPENID_CLIENT_ID`, `OPENID_CLIENT_SECRET`,
`OPENID_SCOPES`, `OPENID_NAME_CLAIM`, `OPENID_TOLERANCE`, `OPENID_RESOURCE`, and the older JSON5
object `OPENID_CONFIG` whose keys (`PROVIDER_URL`, `CLIENT_ID`, ...) win over them when set and
not empty. The allow-lists (`ALLOWED_USER_EMAILS`, `ALLOWED_USER_DOMAINS`) and the admins
(`ADMIN_USERS`, `OPENID_ADMIN_CLAIM`, `OPENID_ADMIN_VALUES`) are JSON arrays. Parsed once by
settings from `config.env`'s merged view; a malformed value stops start-up with a line naming it.

Must not import Django, `chatui` or `inference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import json5

from config.env import env_bool

DEFAULT_SCOPES = "openid profile"
DEFAULT_NAME_CLAIM = "name"
# chat-ui refuses these as the display name's claim: they have meanings of their own.
RESERVED_NAME_CLAIMS = ("preferred_username", "email", "picture", "sub")
CONFIG_KEYS = (
    "PROVIDER_URL",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SCOPES",
    "NAME_CLAIM",
    "TOLERANCE",
    "RESOURCE",
)

NOT_AN_OBJECT = "OPENID_CONFIG must be a JSON5 object, got {value!r}"
NOT_A_STRING_LIST = "{name} must be a JSON array of strings, got {value!r}"
RESERVED_NAME_CLAIM = "OPENID_NAME_CLAIM cannot be one of {claims}, got {value!r}"
NOT_A_TOLERANCE = "OPENID_TOLERANCE must be a whole number of seconds (0 or more), got {value!r}"
MISSING_PROVIDER = "OPENID_CLIENT_ID and OPENID_CLIENT_SECRET are set, OPENID_PROVIDER_URL is not"
NO_OPENID_SCOPE = "OPENID_SCOPES must include 'openid', got {value!r}"


@dataclass(frozen=True)
class OpenIDSettings:
    """The provider, the client, and the login policy. Login through the provider is on when
    the client's id and secret are set (as in chat-ui); hashable, so clients can be cached."""

    provider_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    scopes: str = DEFAULT_SCOPES
    name_claim: str = DEFAULT_NAME_CLAIM
    tolerance_s: int = 0
    resource: str = ""
    allowed_emails: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    admin_users: tuple[str, ...] = ()
    admin_claim: str = ""
    admin_values: tuple[str, ...] = ()
    automatic_login: bool = False

    @property
    def is_enabled(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def provider_origin(self) -> str:
        """`scheme://host[:port]` of the provider (for Content-Security-Policy)."""
        parts = urlsplit(self.provider_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def discovery_url(self) -> str:
        """The provider's metadata document: `PROVIDER_URL` is the issuer, or the document."""
        url = self.provider_url.rstrip("/")
        if url.endswith("/.well-known/openid-configuration"):
            return url
        return f"{url}/.well-known/openid-configuration"


def _string_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    text = (env.get(name) or "").strip()
    if not text:
        return ()
    try:
        value: Any = json5.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(NOT_A_STRING_LIST.format(name=name, value=text))
    return tuple(item.strip() for item in value if item.strip())


def _config_object(env: Mapping[str, str]) -> dict[str, str]:
    """`OPENID_CONFIG`'s keys that are set and not empty, as strings."""
    text = (env.get("OPENID_CONFIG") or "").strip()
    if not text:
        return {}
    try:
        value: Any = json5.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(NOT_AN_OBJECT.format(value=text))
    # Other keys are ignored, as chat-ui's parser ignores them (newer files may hold more).
    return {key: str(value[key]) for key in CONFIG_KEYS if value.get(key) not in (None, "")}


def _tolerance(value: str) -> int:
    text = value.strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(NOT_A_TOLERANCE.format(value=value))
    return int(text)


def openid_settings(env: Mapping[str, str]) -> OpenIDSettings:
    """The OpenID settings of `env` (`config.env.load_env`'s view); ValueError names a bad one."""
    from_config = _config_object(env)

    def read(key: str, default: str = "") -> str:
        return (from_config.get(key) or env.get(f"OPENID_{key}") or default).strip()

    name_claim = read("NAME_CLAIM", DEFAULT_NAME_CLAIM)
    if name_claim in RESERVED_NAME_CLAIMS:
        raise ValueError(RESERVED_NAME_CLAIM.format(claims=RESERVED_NAME_CLAIMS, value=name_claim))
    scopes = " ".join(read("SCOPES", DEFAULT_SCOPES).split())
    settings = OpenIDSettings(
        provider_url=read("PROVIDER_URL"),
        client_id=read("CLIENT_ID"),
        client_secret=read("CLIENT_SECRET"),
        scopes=scopes,
        name_claim=name_claim,
        tolerance_s=_tolerance(read("TOLERANCE")),
        resource=read("RESOURCE"),
        allowed_emails=tuple(e.lower() for e in _string_list(env, "ALLOWED_USER_EMAILS")),
        allowed_domains=tuple(d.lower() for d in _string_list(env, "ALLOWED_USER_DOMAINS")),
        admin_users=_string_list(env, "ADMIN_USERS"),
        admin_claim=(env.get("OPENID_ADMIN_CLAIM") or "").strip(),
        admin_values=_string_list(env, "OPENID_ADMIN_VALUES"),
        automatic_login=env_bool(env, "AUTOMATIC_LOGIN"),
    )
    if settings.is_enabled and not settings.provider_url:
        raise ValueError(MISSING_PROVIDER)
    if settings.is_enabled and "openid" not in scopes.split():
        raise ValueError(NO_OPENID_SCOPE.format(value=scopes))
    return settings
