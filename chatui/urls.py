"""Page and JSON API routes (docs/chat-protocol.md)."""

from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.urls import path

from chatui import api, views

urlpatterns = [
    path("", views.chat_page, name="chat"),
    path("conversation/<uuid:conversation_id>", views.chat_page, name="conversation"),
    path("r/<str:share_id>", views.shared_page, name="shared"),
    path("r/<str:share_id>/continue", views.shared_continue, name="shared-continue"),
    path("login", views.LoginPage.as_view(), name="login"),
    path("signup", views.signup, name="signup"),
    path("logout", LogoutView.as_view(), name="logout"),
    path("api/models", api.models, name="api-models"),
    path("api/conversations", api.conversations, name="api-conversations"),
    path("api/conversations/<uuid:conversation_id>", api.conversation, name="api-conversation"),
    path(
        "api/conversations/<uuid:conversation_id>/share",
        api.conversation_share,
        name="api-conversation-share",
    ),
    path(
        "api/conversations/<uuid:conversation_id>/messages/<uuid:message_id>/score",
        api.message_score,
        name="api-message-score",
    ),
    path("api/settings", api.user_settings, name="api-settings"),
    path("api/export", api.export, name="api-export"),
]
