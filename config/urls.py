"""The URL map: the operations routes (health, readiness, metrics), Django admin (plus the
Models status page and the process's runtime counts), the chat API for scripts (`/api/v1/`)
and the chat app.
Error pages of `/api/` paths are JSON (chatui.api); others are the styled templates/404.html
etc."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from chatui import ops
from chatui.admin import feedback_export, models_status
from chatui.oidc.views import admin_login
from chatui.runtime import runtime_view

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("admin/models/", admin.site.admin_view(models_status), name="admin-models"),
    path("admin/feedback.jsonl", admin.site.admin_view(feedback_export), name="admin-feedback"),
    path("admin/runtime.json", runtime_view, name="admin-runtime"),
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("chatui.api_v1.urls")),
    path("", include("chatui.urls")),
]

handler400 = "chatui.api.bad_request"
handler403 = "chatui.api.forbidden"
handler404 = "chatui.api.not_found"
handler500 = "chatui.api.server_error"
