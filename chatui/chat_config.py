"""The chat configuration (MODELS, limits...) that `ChatuiConfig.ready()` parsed from the
environment and `.env.local`: one getter for the app, one setter for tests.

Must not import models, services or anything above them (everything imports this).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import apps

if TYPE_CHECKING:
    from chatui.models_config import AppConfig


def get_chat_config() -> AppConfig:
    """The configuration loaded at start-up (tests may replace it with `set_chat_config`)."""
    return apps.get_app_config("chatui").chat_config


def set_chat_config(config: AppConfig) -> None:
    apps.get_app_config("chatui").chat_config = config
