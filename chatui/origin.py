"""The websocket handshake's origin check: the rule Django's CSRF middleware applies to a POST.

A handshake is accepted when its `Host` is in ALLOWED_HOSTS and its `Origin` is the request's
own origin (scheme, host and port: `https` when the socket is `wss` or SECURE_PROXY_SSL_HEADER
says so) or one of CSRF_TRUSTED_ORIGINS (`https://*.example.com` matches subdomains). Channels'
`AllowedHostsOriginValidator` compares only the host, so `http://127.0.0.1:9999` (another
program on the same machine) or `https://` instead of `http://` passed. Anything else is
refused at the handshake (403), a missing Origin included. Must not import views or consumers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the default port filled in; None when unreadable."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname, port


def _is_secure(scope: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, value = proxy_header
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        forwarded = headers.get(header, b"").decode("latin-1").split(",")[0].strip()
        return forwarded == value
    return scope.get("scheme") in ("wss", "https")


def _trusted(origin: str) -> bool:
    key = _origin_key(origin)
    if key is None:
        return False
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if "*" not in trusted:
            if _origin_key(trusted) == key:
                return True
            continue
        parts = urlsplit(trusted.lower())
        # NOTE: as Django's CSRF check: "https://*.example.com" -> scheme https, ".example.com"
        # with the netloc (port included) of the origin compared.
        netloc = urlsplit(origin.strip().lower()).netloc
        if parts.scheme == key[0] and is_same_domain(
            netloc, parts.netloc[parts.netloc.find("*") + 1 :]
        ):
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether a websocket scope's Origin may open a socket here (see the module docstring)."""
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    host = headers.get(b"host", b"").decode("latin-1")
    origin = headers.get(b"origin", b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    if not origin or not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = "https" if _is_secure(scope, headers) else "http"
    own = _origin_key(f"{scheme}://{host}")
    key = _origin_key(origin)
    return (key is not None and key == own) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware for websockets: refuses a handshake whose origin is not allowed."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
