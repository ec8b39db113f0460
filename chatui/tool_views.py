"""`/api/tools`: the tools a user can be offered, by server, with what they turned off, and
the change of those settings (`PATCH {disabled?, servers?}`). Async: listing a server's
tools is a network call (`chatui.tools.catalog`).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from chatui.api import METHOD_NOT_ALLOWED, _json_body, error_response
from chatui.errors import ChatError
from chatui.identity import identity_from_request
from chatui.services.tool_settings import tool_settings_get, tool_settings_update
from chatui.tools.catalog import BUILTIN
from chatui.tools.mcp_servers import user_servers
from chatui.tools.setup import get_catalog

ALLOWED = ("GET", "PATCH")


def _read_or_write(request: HttpRequest) -> dict[str, Any]:
    identity = identity_from_request(request, create=request.method == "PATCH")
    if request.method != "PATCH":
        return tool_settings_get(identity=identity)
    body = _json_body(request)
    taken = {s.name for s in get_catalog().servers} | {BUILTIN}
    return tool_settings_update(
        identity=identity, disabled=body.get("disabled"), servers=body.get("servers"), taken=taken
    )


async def tools(request: HttpRequest) -> HttpResponse:
    """`{"servers": [{name, transport, url, is_user, enabled, num_tools}], "tools": [{key,
    name, description, source, enabled}], "disabled", "allow_user_servers"}`."""
    if request.method not in ALLOWED:
        response = error_response(
            METHOD_NOT_ALLOWED.format(method=request.method, allowed=", ".join(ALLOWED)), 405
        )
        response["Allow"] = ", ".join(ALLOWED)
        return response
    try:
        prefs = await sync_to_async(_read_or_write)(request)
    except ChatError as exc:
        return error_response(exc.message, exc.status)
    catalog = get_catalog()
    mine = user_servers(prefs.get("servers"))
    offered = await catalog.offered(user_servers=mine)
    disabled = set(prefs["disabled"])
    servers = [{"name": BUILTIN, "transport": "builtin", "url": "", "is_user": False}]
    servers += [s.to_public_dict() for s in (*catalog.servers, *mine)]
    for server in servers:
        server["enabled"] = f"server:{server['name']}" not in disabled
        server["num_tools"] = sum(1 for t in offered if t.source == server["name"])
    listed = [
        {
            "key": t.key,
            "name": t.name,
            "description": t.description,
            "source": t.source,
            "enabled": t.key not in disabled and f"server:{t.source}" not in disabled,
        }
        for t in offered
    ]
    return JsonResponse(
        {
            "servers": servers,
            "tools": listed,
            "disabled": sorted(disabled),
            "allow_user_servers": settings.CHATUI_MCP_ALLOW_USER_SERVERS,
        }
    )
