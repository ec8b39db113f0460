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
from chatui.page_context import base_context
from chatui.selectors import active_model_id, assistant_get, conversation_get, shared_get
from chatui.serializers import assistant_to_dict

SIGNUP_CLOSED = "Sign-up is closed on this app: ask its administrator for an account."
LOCAL_LOGIN_OFF = "Passwords are switched off on this app: log in with single sign-on."
LOGIN_LOCKED_OUT = (
    "Too many failed login attempts for this account or from this address. "
    "Wait {minutes} minutes before trying again."
)


@require_http_methods(["GET"])
def chat_page(request: HttpRequest, conversation_id: Any = None) -> HttpResponse:
    """`chatui/chat.html`. Context: app_name, app_description, disclaimer, user_is_authenticated,
    user_is_staff (a link to the admin), username, `models_json` (list of public Model dicts,
    for `json_script`), `active_model` (id), `conversation_id` (str, or None on `/`),
    `assistant_json` (on `/?assistant=<id>`: the assistant a new chat starts with; else None).
    Creates no session: the visitor's first write does."""
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
        "assistant_json": _new_chat_assistant(request) if conversation_id is None else None,
    }
    return render(request, "chatui/chat.html", context)


def _new_chat_assistant(request: HttpRequest) -> dict[str, Any] | None:
    """The assistant of `?assistant=<id>` (None when absent or unknown: a plain new chat).
    Nothing is created: the conversation comes with the first message."""
    assistant_id = request.GET.get("assistant")
    if not assistant_id:
        return None
    try:
        return assistant_to_dict(assistant_get(assistant_id=assistant_id))
    except ChatError:
        return None


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


class SignupForm(UserCreationForm):
    """Django's sign-up form with the password's rule errors under the password itself (Django
    puts them under the confirmation); a mismatch still shows under the confirmation."""

    def validate_password_for_user(self, user: Any, password_field_name: str = "password1") -> None:
        super().validate_password_for_user(user, password_field_name=password_field_name)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """`registration/signup.html`. Context: the base names plus `form` (SignupForm).
    With sign-up closed (ALLOW_SIGNUP=false), 403 and `registration/login_refused.html`."""
    if not settings.ALLOW_SIGNUP:
        context = base_context(request) | {"title": "Sign-up closed", "message": SIGNUP_CLOSED}
        return render(request, "registration/login_refused.html", context, status=403)
    if request.method == "POST":
        form = SignupForm(request.POST)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("/")
    else:
        form = SignupForm()
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
