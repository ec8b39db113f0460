"""A user's tool settings: which servers and tools they turned off, and the HTTP MCP servers
they added (when the operator allows it), each address checked by the SSRF rule
(`chatui.net_guard`) now and on every request later.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.db import transaction

from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import UserSettings
from chatui.net_guard import UnsafeAddress, check_url
from chatui.services.user_settings import _settings_for_update
from chatui.tools.mcp_servers import McpConfigError, server_from_entry

MAX_USER_SERVERS = 10
MAX_DISABLED = 500
DISABLED_INVALID = "disabled must be a list of names (at most {0})."
SERVERS_INVALID = "servers must be a list of at most {0} servers."
USER_SERVERS_OFF = "Adding your own MCP servers is turned off on this server."
USER_SERVER_INVALID = "The server {name!r} cannot be added: {error}"


def tool_settings_get(*, identity: Identity) -> dict[str, Any]:
    """`{"disabled": [...], "servers": [entries]}` ({} parts empty when never set)."""
    row = UserSettings.objects.filter(identity.owner_q()).first()
    stored = (row.tools if row is not None else None) or {}
    return {"disabled": list(stored.get("disabled") or []), "servers": stored.get("servers") or []}


def _checked_servers(
    servers: Any, taken: set[str], stored: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if not isinstance(servers, list) or len(servers) > MAX_USER_SERVERS:
        raise ChatError(SERVERS_INVALID.format(MAX_USER_SERVERS))
    if servers and not django_settings.CHATUI_MCP_ALLOW_USER_SERVERS:
        raise ChatError(USER_SERVERS_OFF, status=403)
    checked: list[dict[str, Any]] = []
    for entry in servers:
        name = entry.get("name") if isinstance(entry, dict) else None
        try:
            server = server_from_entry(entry, is_user=True)
            if server.name in taken:
                raise McpConfigError(f"the name {server.name!r} is taken")
            check_url(server.url, allow_private=django_settings.CHATUI_MCP_ALLOW_PRIVATE_URLS)
        except (McpConfigError, UnsafeAddress) as exc:
            raise ChatError(USER_SERVER_INVALID.format(name=name, error=exc)) from None
        taken.add(server.name)
        headers = dict(server.headers)
        if "headers" not in entry:  # kept: the page never sees them, so never sends them
            same = [s for s in stored if (s.get("name"), s.get("url")) == (server.name, server.url)]
            headers = dict(same[0].get("headers") or {}) if same else {}
        checked.append({"name": server.name, "url": server.url, "headers": headers})
    return checked


def tool_settings_update(
    *, identity: Identity, disabled: Any = None, servers: Any = None, taken: set[str]
) -> dict[str, Any]:
    """Replace the given parts; `taken`: the configured servers' names (a user's server may
    not shadow one)."""
    if disabled is not None and (
        not isinstance(disabled, list)
        or len(disabled) > MAX_DISABLED
        or not all(isinstance(d, str) and len(d) <= 200 for d in disabled)
    ):
        raise ChatError(DISABLED_INVALID.format(MAX_DISABLED))
    with transaction.atomic():
        row = _settings_for_update(identity)
        stored = dict(row.tools or {})
        checked = None
        if servers is not None:
            checked = _checked_servers(servers, set(taken), stored.get("servers") or [])
        if disabled is not None:
            stored["disabled"] = sorted(set(disabled))
        if checked is not None:
            stored["servers"] = checked
        row.tools = stored
        row.save(update_fields=["tools", "updated_at"])
    return tool_settings_get(identity=identity)
