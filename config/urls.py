"""The URL map: Django admin (plus the Models status page) and the chat app."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from chatui.admin import models_status

urlpatterns = [
    path("admin/models/", admin.site.admin_view(models_status), name="admin-models"),
    path("admin/", admin.site.urls),
    path("", include("chatui.urls")),
]
