"""Routes of the chat API for scripts, under `/api/v1/` (docs/api.md)."""

from __future__ import annotations

from django.urls import path, re_path

from chatui.api_v1 import completions, errors, views

urlpatterns = [
    path("models", views.models, name="api-v1-models"),
    path("models/<path:model_id>", views.model, name="api-v1-model"),
    path("chat/completions", completions.chat_completions, name="api-v1-chat-completions"),
    path("conversations", views.conversations, name="api-v1-conversations"),
    path(
        "conversations/<uuid:conversation_id>",
        views.conversation,
        name="api-v1-conversation",
    ),
    re_path(r"^(?P<path>.*)$", errors.not_found, name="api-v1-unknown"),
]
