"""The login through the provider: start (`/login/oidc`), callback (`/login/callback`),
logout (`/logout`, which also ends the provider's session), and `/admin/login/` when local
passwords are off. Thin: `client` talks to the provider, `policy` and `accounts` decide.

A refusal is the readable page `registration/login_refused.html` (context: the base names
plus `title`, `message` and `switch_account_url`, "" or a login as someone else), never a
stack trace.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import login, logout
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chatui.oidc.accounts import openid_user_login
from chatui.oidc.backend import OPENID_BACKEND
from chatui.oidc.client import (
    LOGIN_ERRORS,
    authorization_redirect,
    end_session_url,
    verified_login,
)
from chatui.oidc.policy import login_refusal
from chatui.oidc.redirects import safe_next
from chatui.views import base_context

logger = logging.getLogger(__name__)

NEXT_SESSION_KEY = "chatui_openid_next"
ID_TOKEN_SESSION_KEY = "chatui_openid_id_token"
LOGIN_FAILED = (
    "The login could not be completed: the identity provider's answer did not check out, or "
    "the login was started in another tab or too long ago. Try again."
)
ACCOUNT_DISABLED = "This account is disabled on this app. Ask its administrator."
PROVIDER_UNREACHABLE = "The identity provider cannot be reached right now. Try again later."
NOT_ALLOWED_TITLE = "Access not allowed"
SWITCH_ACCOUNT_PATH = "/login/oidc?prompt=login"
FAILED_TITLE = "Login failed"


def refused(
    request: HttpRequest, title: str, message: str, status: int, *, switch_account: bool = False
) -> HttpResponse:
    """The refusal page; `switch_account` offers a login as someone else at the provider."""
    context = base_context(request) | {
        "title": title,
        "message": message,
        "switch_account_url": SWITCH_ACCOUNT_PATH if switch_account else "",
    }
    return render(request, "registration/login_refused.html", context, status=status)


@require_GET
def login_start(request: HttpRequest) -> HttpResponse:
    """Sends the visitor to the provider; `next` (a path of this site) is where they return."""
    openid = settings.OPENID
    if not openid.is_enabled:
        raise Http404
    next_path = safe_next(request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_path)
    request.session[NEXT_SESSION_KEY] = next_path
    # `prompt=login`: the provider asks who is logging in even if it has a session (after a
    # refusal, to log in with another account).
    prompt = "login" if request.GET.get("prompt") == "login" else ""
    try:
        return authorization_redirect(request, openid, prompt=prompt)
    except LOGIN_ERRORS as exc:
        logger.warning("OpenID provider unreachable: %s", exc)
        return refused(request, FAILED_TITLE, PROVIDER_UNREACHABLE, status=502)


@require_GET
def login_callback(request: HttpRequest) -> HttpResponse:
    """Checks the provider's answer, applies the allow-lists, logs the user in (a new session
    key; the visitor's anonymous conversations move to the account) and returns to `next`."""
    openid = settings.OPENID
    if not openid.is_enabled:
        raise Http404
    next_path = safe_next(request.session.pop(NEXT_SESSION_KEY, None))
    try:
        claims, id_token = verified_login(request, openid)
    except LOGIN_ERRORS as exc:
        logger.warning("OpenID login refused: %s", exc)
        return refused(request, FAILED_TITLE, LOGIN_FAILED, status=400)
    reason = login_refusal(claims, openid)
    if reason is not None:
        logger.info("OpenID login not allowed for sub=%s", claims.get("sub"))
        return refused(request, NOT_ALLOWED_TITLE, reason, status=403, switch_account=True)
    user = openid_user_login(issuer=str(claims["iss"]), claims=claims, openid=openid)
    if not user.is_active:  # an admin switched the account off here
        return refused(request, NOT_ALLOWED_TITLE, ACCOUNT_DISABLED, status=403)
    login(request, user, backend=OPENID_BACKEND)
    request.session[ID_TOKEN_SESSION_KEY] = id_token
    return redirect(next_path)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Ends this site's session, then the provider's (RP-initiated logout) where it offers it."""
    id_token = request.session.get(ID_TOKEN_SESSION_KEY)
    logout(request)
    openid = settings.OPENID
    if id_token and openid.is_enabled:
        url = end_session_url(request, openid, id_token)
        if url:
            return redirect(url)
    return redirect(settings.LOGOUT_REDIRECT_URL)


@require_http_methods(["GET", "POST"])
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own login form, or the site's login page while local passwords are off."""
    if settings.ALLOW_LOCAL_LOGIN:
        return admin.site.login(request)
    next_path = safe_next(request.GET.get("next") or "/admin/")
    return redirect(f"{settings.LOGIN_URL}?{urlencode({'next': next_path})}")
