"""Websocket URL patterns (mounted by config/asgi.py)."""

from __future__ import annotations

from django.urls import path

from chatui.consumers import ConversationConsumer

websocket_urlpatterns = [
    path("ws/conversations/<uuid:conversation_id>/", ConversationConsumer.as_asgi()),
]
