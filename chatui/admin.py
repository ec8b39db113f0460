"""Django admin: conversations (with their message tree inline), messages, shares, settings,
the users' single sign-on identities, personal API tokens (listed and revoked, never shown),
and a "Models" page: configured models, each endpoint's live health, and usage per day."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from chatui.chat_config import get_chat_config
from chatui.models import (
    ApiToken,
    Assistant,
    Conversation,
    Feedback,
    Message,
    OpenIDAccount,
    SharedConversation,
    UserSettings,
)
from chatui.selectors import feedback_list, feedback_record

# The index links to the Models page (the template extends the stock admin index).
admin.site.index_template = "admin/chatui/index.html"


class MessageInline(admin.TabularInline):
    model = Message
    fk_name = "conversation"
    extra = 0
    ordering = ("created_at",)
    fields = (
        *("role", "parent", "content", "model", "finish_reason", "interrupted", "error", "score"),
    )
    readonly_fields = ("parent",)
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("title", "model", "assistant", "user", "anon_key", "created_at", "updated_at")
    list_filter = (
        *("model", ("user", admin.RelatedOnlyFieldListFilter)),
        *(("assistant", admin.RelatedOnlyFieldListFilter), "created_at"),
    )
    search_fields = ("title", "messages__content")
    date_hierarchy = "created_at"
    readonly_fields = ("id", "created_at", "updated_at")
    raw_id_fields = ("user", "assistant")
    inlines = (MessageInline,)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "role", "model", "score", "is_generating", "created_at")
    list_filter = ("role", "model", "score", "is_generating", "interrupted", "created_at")
    search_fields = ("content",)
    raw_id_fields = ("conversation", "parent")
    readonly_fields = ("id", "created_at", "updated_at", "heartbeat_at")


def feedback_jsonl_response(messages: Iterable[Message]) -> StreamingHttpResponse:
    """Rated answers as JSON Lines (prompt, answer, score, model, ...), one answer a line."""
    lines = (json.dumps(feedback_record(m), ensure_ascii=False) + "\n" for m in messages)
    response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="feedback.jsonl"'
    return response


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """Thumbs up/down on answers, filterable, with the conversation one click away."""

    list_display = ("answer_excerpt", "score", "model", "conversation", "updated_at")
    list_filter = ("score", "model", "updated_at")
    search_fields = ("content", "parent__content")
    list_select_related = ("conversation", "parent")
    readonly_fields = ("conversation", "parent", "content", "model", "score", "created_at")
    fields = readonly_fields
    actions = ("export_jsonl",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return feedback_list()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="answer")
    def answer_excerpt(self, obj: Message) -> str:
        return obj.content[:80]

    @admin.action(description="Export the selected feedback as JSONL")
    def export_jsonl(self, request: HttpRequest, queryset: Any) -> StreamingHttpResponse:
        return feedback_jsonl_response(queryset.iterator())


def feedback_export(request: HttpRequest) -> StreamingHttpResponse:
    """`/admin/feedback.jsonl` (wrapped in `admin_view`): every rated answer, or those of
    `?score=1|-1` and `?model=<id>`."""
    score = request.GET.get("score")
    score = int(score) if score in ("1", "-1") else None
    rated = feedback_list(score=score, model=request.GET.get("model", ""))
    return feedback_jsonl_response(rated.iterator())


@admin.register(SharedConversation)
class SharedConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "model", "user", "created_at")
    list_filter = ("model", "created_at")
    search_fields = ("id", "title")
    raw_id_fields = ("conversation", "user")
    readonly_fields = ("id", "created_at")


@admin.register(OpenIDAccount)
class OpenIDAccountAdmin(admin.ModelAdmin):
    """Read-only: the provider owns these identities; deleting the user removes the link."""

    list_display = ("user", "email", "subject", "issuer", "last_login_at")
    search_fields = ("user__username", "email", "subject")
    readonly_fields = ("user", "issuer", "subject", "email", "created_at", "last_login_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    """Feature or remove assistants; `conversations` counts the chats started with each."""

    list_display = ("name", "user", "model", "is_featured", "conversations", "created_at")
    list_editable = ("is_featured",)
    list_filter = ("is_featured", "model", "created_at")
    search_fields = ("name", "description", "user__username")
    raw_id_fields = ("user",)
    readonly_fields = ("id", "created_at", "updated_at")
    actions = ("feature", "unfeature")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Assistant]:
        return super().get_queryset(request).annotate(num_conversations=Count("conversations"))

    @admin.display(description="conversations", ordering="num_conversations")
    def conversations(self, obj: Assistant) -> int:
        return obj.num_conversations

    @admin.action(description="Feature the selected assistants")
    def feature(self, request: HttpRequest, queryset: QuerySet[Assistant]) -> None:
        queryset.update(is_featured=True)

    @admin.action(description="Stop featuring the selected assistants")
    def unfeature(self, request: HttpRequest, queryset: QuerySet[Assistant]) -> None:
        queryset.update(is_featured=False)


@admin.register(UserSettings)
class UserSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "active_model", "theme", "updated_at")
    raw_id_fields = ("user",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Who holds which token and when it was last used; a leaked one is revoked here. The
    secret is never stored, and its digest is not shown."""

    list_display = ("name", "user", "key_id", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "key_id", "user__username")
    fields = ("name", "user", "key_id", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token is made by its user, who alone sees it once

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def _endpoint_health(endpoint: Any) -> dict[str, Any]:
    from chatui.endpoints import endpoint_status

    try:
        if inspect.iscoroutinefunction(endpoint_status):
            return dict(async_to_sync(endpoint_status)(endpoint))
        return dict(endpoint_status(endpoint))
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def info_rows(info: Any) -> list[tuple[str, str]]:
    """An endpoint's `/info` (or model list) as readable rows, not a Python dict: one row per
    key, lists joined with commas, nested objects as compact JSON."""
    if not isinstance(info, dict):
        return [] if info is None else [("", str(info))]
    rows = []
    for key, value in info.items():
        if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict | list):
            text = json.dumps(value, separators=(", ", ": "))
        else:
            text = "" if value is None else str(value)
        rows.append((str(key), text))
    return rows


def usage_per_day() -> list[dict[str, Any]]:
    """Conversations answered and tokens generated, per model per day (newest first)."""
    return list(
        Message.objects.filter(role=Message.Role.ASSISTANT)
        .annotate(day=TruncDate("created_at"))
        .values("day", "model")
        .annotate(
            conversations=Count("conversation", distinct=True),
            answers=Count("id"),
            generated_tokens=Sum("generated_tokens"),
        )
        .order_by("-day", "model")
    )


def models_status(request: HttpRequest) -> HttpResponse:
    """The admin "Models" page (wrapped in `admin_view` by config/urls.py)."""
    config = get_chat_config()
    models = [
        {
            "id": model.id,
            "name": model.display_name or model.name,
            "unlisted": model.unlisted,
            "endpoints": [
                {
                    "endpoint": getattr(endpoint, "key", endpoint),
                    "status": status,
                    "info_rows": info_rows(status.get("info")),
                }
                for endpoint in model.endpoints
                for status in (_endpoint_health(endpoint),)
            ],
        }
        for model in config.models
    ]
    context = admin.site.each_context(request) | {
        "title": "Models",
        "models": models,
        "usage": usage_per_day(),
        "task_model": getattr(config, "task_model", None),
    }
    return TemplateResponse(request, "admin/chatui/models_status.html", context)
