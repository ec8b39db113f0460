"""Page and JSON API routes (docs/chat-protocol.md)."""

from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.urls import path

from chatui import api, assistant_views, tool_views, views

urlpatterns = [
    path("", views.chat_page, name="chat"),
    path("conversation/<uuid:conversation_id>", views.chat_page, name="conversation"),
    path("r/<str:share_id>", views.shared_page, name="shared"),
    path("r/<str:share_id>/continue", views.shared_continue, name="shared-continue"),
    path("r/<str:share_id>/files/<uuid:attachment_id>", views.shared_file, name="shared-file"),
    path("assistants", assistant_views.assistant_list, name="assistants"),
    path("assistants/new", assistant_views.assistant_edit, name="assistant-new"),
    path("assistant/<uuid:assistant_id>", assistant_views.assistant_page, name="assistant"),
    path(
        "assistant/<uuid:assistant_id>/edit",
        assistant_views.assistant_edit,
        name="assistant-edit",
    ),
    path(
        "assistant/<uuid:assistant_id>/delete",
        assistant_views.assistant_delete,
        name="assistant-delete",
    ),
    path(
        "assistant/<uuid:assistant_id>/start",
        assistant_views.assistant_start,
        name="assistant-start",
    ),
    path(
        "assistant/<uuid:assistant_id>/avatar",
        assistant_views.assistant_avatar,
        name="assistant-avatar",
    ),
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
    path(
        "api/conversations/<uuid:conversation_id>/attachments",
        api.conversation_attachments,
        name="api-conversation-attachments",
    ),
    path("api/attachments/<uuid:attachment_id>", api.attachment_file, name="api-attachment"),
    path("api/settings", api.user_settings, name="api-settings"),
    path("api/tools", tool_views.tools, name="api-tools"),
    path("api/export", api.export, name="api-export"),
]
