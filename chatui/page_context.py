"""What every page's template reads (the app's name, description, disclaimer and who is signed
in): the chat pages, the account pages and the error pages share it. Imports no view."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from chatui.chat_config import get_chat_config


def display_name(user: Any) -> str:
    """The name the provider gave (OPENID_NAME_CLAIM), else the account's user name."""
    return user.get_full_name() or user.get_username()


def base_context(request: HttpRequest) -> dict[str, Any]:
    """The names base.html and every page read: the app's branding and the signed-in user."""
    config = get_chat_config()
    user = request.user
    return {
        "app_name": config.app_name,
        "app_description": config.app_description,
        "disclaimer": config.disclaimer,
        "user_is_authenticated": user.is_authenticated,
        "user_is_staff": user.is_authenticated and user.is_staff,
        "username": display_name(user) if user.is_authenticated else "",
        "can_sign_up": settings.ALLOW_SIGNUP,
    }
