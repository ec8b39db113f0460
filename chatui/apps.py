"""The `chatui` Django app: loads the chat configuration (MODELS, limits...) once at start-up.

A bad configuration stops start-up with `AppConfigError`, whose message is the readable
`ConfigError` text; `manage.py` and `config/asgi.py` print it without a stack trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from chatui.models_config import AppConfig as ChatConfig


class AppConfigError(ImproperlyConfigured):
    """The chat configuration (MODELS, USAGE_LIMITS, ...) is invalid; the message says why."""


class ChatuiConfig(AppConfig):
    name = "chatui"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    chat_config: ChatConfig

    def ready(self) -> None:
        from chatui import identity  # noqa: F401  (connects the login signal)
        from chatui.models_config import ConfigError, load_app_config

        try:
            self.chat_config = load_app_config(settings.ENV)
        except ConfigError as exc:
            raise AppConfigError(f"Invalid chat configuration: {exc}") from None


def get_chat_config() -> ChatConfig:
    """The configuration loaded at start-up (tests may replace it with `set_chat_config`)."""
    return apps.get_app_config("chatui").chat_config


def set_chat_config(config: ChatConfig) -> None:
    apps.get_app_config("chatui").chat_config = config
