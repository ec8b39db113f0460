"""The process's tool catalog, made once at start-up from the settings (`MCP_SERVERS` and
the `CHATUI_TOOL_*`/`CHATUI_MCP_*` values), and the limits each call runs under.

The one module of `chatui.tools` that reads Django's settings; must not import the ORM or the
websocket layer.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings

from chatui.tools.calls import CallLimits
from chatui.tools.catalog import ToolCatalog
from chatui.tools.mcp_servers import parse_mcp_servers


def make_catalog() -> ToolCatalog:
    """A catalog of the configured servers; `McpConfigError` names a bad entry."""
    return ToolCatalog(
        parse_mcp_servers(settings.ENV.get("MCP_SERVERS")),
        refresh_s=settings.CHATUI_MCP_REFRESH_S,
        allow_private=settings.CHATUI_MCP_ALLOW_PRIVATE_URLS,
    )


def get_catalog() -> ToolCatalog:
    """This process's catalog (made by `ChatuiConfig.ready()`; tests may swap it)."""
    return apps.get_app_config("chatui").tool_catalog


def set_catalog(catalog: ToolCatalog) -> ToolCatalog:
    """Swap the process's catalog (tests); returns the one it replaced."""
    config = apps.get_app_config("chatui")
    previous, config.tool_catalog = config.tool_catalog, catalog
    return previous


def call_limits() -> CallLimits:
    return CallLimits(
        timeout_s=float(settings.CHATUI_TOOL_TIMEOUT_S),
        max_result_chars=settings.CHATUI_TOOL_MAX_RESULT_CHARS,
    )


def max_steps() -> int:
    return max(1, settings.CHATUI_TOOL_MAX_STEPS)
