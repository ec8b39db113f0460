"""The styled error pages (templates/404.html, 403.html, 500.html): the app's look and a way
home for pages, the JSON shape for `/api/` paths."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from django.test import Client, RequestFactory

from chatui.api import FORBIDDEN, NOT_FOUND, forbidden

pytestmark = pytest.mark.django_db

HOME_LINK = 'href="/" id="error-home"'


def test_a_missing_page_is_styled_with_a_way_home(chat_models):
    client = Client()
    for path in (f"/conversation/{uuid.uuid4()}", "/r/deleted-link", "/no/such/page"):
        response = client.get(path)
        assert response.status_code == 404
        page = response.content.decode()
        assert HOME_LINK in page and 'data-status="404"' in page and "chatui/base.css" in page
    api = client.get("/api/no/such/route")
    assert (api.status_code, api.json()) == (404, {"error": NOT_FOUND})


def test_refused_and_server_error_pages(chat_models):
    request = RequestFactory().get("/somewhere")
    request.user = AnonymousUser()
    response = forbidden(request, PermissionDenied())
    assert response.status_code == 403 and HOME_LINK in response.content.decode()
    api_request = RequestFactory().get("/api/somewhere")
    assert forbidden(api_request, PermissionDenied()).content == (
        b'{"error": "' + FORBIDDEN.encode() + b'"}'
    )
    # The 500 page is rendered without a request: nothing in it may need one.
    page = render_to_string("500.html")
    assert HOME_LINK in page and 'data-status="500"' in page
