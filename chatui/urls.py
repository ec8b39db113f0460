"""Page and JSON API routes (docs/chat-protocol.md)."""

from __future__ import annotations

from django.urls import path

from chatui import api, assistant_views, tool_views, views
from chatui.oidc import views as oidc_views

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
    path("login/oidc", oidc_views.login_start, name="login-oidc"),
    path("login/callback", oidc_views.login_callback, name="login-callback"),
    path("logout", oidc_views.logout_view, name="logout"),
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
    path(
        "api/conversations/<uuid:conversation_id>/attachments/url",
        api.conversation_attachment_url,
        name="api-conversation-attachment-url",
    ),
    path("api/attachments/<uuid:attachment_id>", api.attachment_file, name="api-attachment"),
    path("api/settings", api.user_settings, name="api-settings"),
    path("api/tools", tool_views.tools, name="api-tools"),
    path("api/export", api.export, name="api-export"),
    path("api/tokens", api.api_tokens, name="api-tokens"),
    path("api/tokens/<int:token_id>", api.api_token, name="api-token"),
]
