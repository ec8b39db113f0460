"""HTML pages: the chat page, shared snapshots, signup. Thin: a selector or service call and a
template. The templates (owned by the pages) rely only on the context names documented here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from chatui import attachments, services
from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.identity import identity_from_request
from chatui.selectors import active_model_id, conversation_get, shared_get

SIGNUP_CLOSED = "Sign-up is closed on this app: ask its administrator for an account."
LOCAL_LOGIN_OFF = "Passwords are switched off on this app: log in with single sign-on."
LOGIN_LOCKED_OUT = (
    "Too many failed login attempts for this account or from this address. "
    "Wait {minutes} minutes before trying again."
)


def display_name(user: Any) -> str:
    """The name the provider gave (OPENID_NAME_CLAIM), else the account's user name."""
    return user.get_full_name() or user.get_username()


def base_context(request: HttpRequest) -> dict[str, Any]:
    config = get_chat_config()
    user = request.user
    return {
        "app_name": config.app_name,
        "app_description": config.app_description,
        "disclaimer": config.disclaimer,
        "user_is_authenticated": user.is_authenticated,
        "username": display_name(user) if user.is_authenticated else "",
        "can_sign_up": settings.ALLOW_SIGNUP,
    }


@require_http_methods(["GET"])
def chat_page(request: HttpRequest, conversation_id: Any = None) -> HttpResponse:
    """`chatui/chat.html`. Context: app_name, app_description, disclaimer, user_is_authenticated,
    username, `models_json` (list of public Model dicts, for `json_script`), `active_model` (id),
    `conversation_id` (str, or None on `/`). Creates no session: the visitor's first write does."""
    identity = identity_from_request(request, create=False)
    if conversation_id is not None:
        try:
            conversation_get(identity=identity, conversation_id=conversation_id)
        except ChatError:
            raise Http404 from None
    config = get_chat_config()
    context = base_context(request) | {
        "models_json": [m.to_public_dict() for m in config.listed_models],
        "active_model": active_model_id(identity=identity),
        "conversation_id": str(conversation_id) if conversation_id is not None else None,
    }
    return render(request, "chatui/chat.html", context)


@require_http_methods(["GET"])
def shared_page(request: HttpRequest, share_id: str) -> HttpResponse:
    """`chatui/shared.html`. Context: the base names plus `share_id`, `shared_json`
    (a Conversation dict, for `json_script`), `title`, `model`, `continue_url` (POST target)."""
    try:
        share = shared_get(share_id=share_id)
    except ChatError:
        raise Http404 from None
    context = base_context(request) | {
        "share_id": share.id,
        "shared_json": share.snapshot,
        "title": share.title,
        "model": share.model,
        "continue_url": f"/r/{share.id}/continue",
    }
    return render(request, "chatui/shared.html", context)


@require_http_methods(["GET"])
def shared_file(request: HttpRequest, share_id: str, attachment_id: Any) -> HttpResponse:
    """A file of a shared snapshot (its frozen copy): public, like the snapshot."""
    from chatui.api import file_response

    try:
        share = shared_get(share_id=share_id)
        found = attachments.attachment_in_share(share=share, attachment_id=attachment_id)
    except ChatError:
        raise Http404 from None
    return file_response(found)


@require_POST
def shared_continue(request: HttpRequest, share_id: str) -> HttpResponse:
    """Copies the snapshot into the visitor's own conversation and opens it."""
    try:
        share = shared_get(share_id=share_id)
        conversation = services.shared_continue(
            identity=identity_from_request(request), share=share
        )
    except ChatError as exc:
        if exc.status == 404:
            raise Http404 from None
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    return redirect(f"/conversation/{conversation.pk}")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """`registration/signup.html`. Context: the base names plus `form` (UserCreationForm).
    With sign-up closed (ALLOW_SIGNUP=false), 403 and `registration/login_refused.html`."""
    if not settings.ALLOW_SIGNUP:
        context = base_context(request) | {"title": "Sign-up closed", "message": SIGNUP_CLOSED}
        return render(request, "registration/login_refused.html", context, status=403)
    if request.method == "POST":
        form = UserCreationForm(request.POST)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("/")
    else:
        form = UserCreationForm()
    return render(request, "registration/signup.html", base_context(request) | {"form": form})


class LoginPage(LoginView):
    """`registration/login.html`. Context: the base names plus Django's `form` and `next`,
    `local_login` (ALLOW_LOCAL_LOGIN) and `openid_login_url` (the provider's login, offered
    first; "" without one). Logging in moves the anonymous visitor's conversations to the
    account (chatui.identity)."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.ALLOW_LOCAL_LOGIN:
            context = base_context(request) | {"title": "Log in", "message": LOCAL_LOGIN_OFF}
            return render(request, "registration/login_refused.html", context, status=403)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs) | base_context(self.request)
        openid_url = ""
        if settings.OPENID.is_enabled:
            openid_url = f"/login/oidc?{urlencode({'next': context.get('next') or '/'})}"
        return context | {
            "local_login": settings.ALLOW_LOCAL_LOGIN,
            "openid_login_url": openid_url,
        }


def login_locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' lockout page (AXES_LOCKOUT_CALLABLE), for /login and /admin/login/ alike:
    429 and `registration/login_refused.html` (context: the base names plus `title`,
    `message` and `refusal_id`, the message's element id)."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    context = base_context(request) | {
        "title": "Too many attempts",
        "message": LOGIN_LOCKED_OUT.format(minutes=minutes),
        "refusal_id": "locked-out",
    }
    return render(request, "registration/login_refused.html", context, status=429)
