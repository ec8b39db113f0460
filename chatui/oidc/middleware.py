"""AUTOMATIC_LOGIN=true: every visitor who has not logged in goes to the provider before the
first page (the JSON API answers 401 instead). Left out of the stack otherwise.

The login routes, static files, the operations routes and the token API (`/api/v1/`, which
authenticates on its own) stay reachable.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

LOGIN_REQUIRED = "Log in first."
OPEN_PATHS = ("/login", "/logout", "/static/", "/healthz", "/readyz", "/metrics", "/api/v1/")
START_PATH = "/login/oidc"


class AutomaticLoginMiddleware:
    """Redirects anonymous visitors to `/login/oidc?next=<the page they asked for>`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        openid = settings.OPENID
        if not (openid.is_enabled and openid.automatic_login):
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated or request.path.startswith(OPEN_PATHS):
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"error": LOGIN_REQUIRED}, status=401)
        return redirect(f"{START_PATH}?{urlencode({'next': request.get_full_path()})}")
