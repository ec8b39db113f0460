"""The `chatui` Django app: at start-up, parses the chat configuration (MODELS, limits...),
makes the process's streaming hub and connects the signal handlers.

A bad configuration stops start-up with `AppConfigError`, whose message is the readable
`ConfigError` text; `manage.py` and `config/asgi.py` print it without a stack trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from chatui.models_config import AppConfig as ChatConfig
    from chatui.streaming.hub import Hub
    from chatui.tools.catalog import ToolCatalog


class AppConfigError(ImproperlyConfigured):
    """The chat configuration (MODELS, USAGE_LIMITS, ...) is invalid; the message says why."""


class ChatuiConfig(AppConfig):
    name = "chatui"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    chat_config: ChatConfig
    hub: Hub
    tool_catalog: ToolCatalog

    def ready(self) -> None:
        from chatui import signals  # noqa: F401  (connects the login handler)
        from chatui.endpoints.openai import fetch_text, list_models
        from chatui.models_config import ConfigError, load_app_config
        from chatui.streaming.hub import Hub
        from chatui.tools.mcp_servers import McpConfigError
        from chatui.tools.setup import make_catalog

        try:
            self.chat_config = load_app_config(
                settings.ENV, list_models=list_models, fetch_text=fetch_text
            )
        except ConfigError as exc:
            raise AppConfigError(f"Invalid chat configuration: {exc}") from None
        try:
            self.tool_catalog = make_catalog()
        except McpConfigError as exc:
            raise AppConfigError(f"Invalid chat configuration: {exc}") from None
        self.hub = Hub()
