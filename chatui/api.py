"""The JSON API of docs/chat-protocol.md (`/api/...`): thin views over selectors and services.

Session auth; the CSRF middleware guards every mutating call (`X-CSRFToken`). Errors are
`{"error": message}` with the `ChatError` status; another owner's conversation is a 404. The
error handlers at the end give `/api/` paths the same shape where Django would answer with an
HTML page (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a CSRF failure, an unknown route, a bug).
Read-only calls never create a session (`identity_from_request(create=False)`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure

from chatui import attachments, selectors, services, url_attachments
from chatui.chat_config import get_chat_config
from chatui.documents import DOCUMENT_MIMES
from chatui.errors import ChatError
from chatui.identity import Identity, identity_from_request
from chatui.page_context import base_context
from chatui.serializers import api_token_to_dict, file_to_dict
from chatui.validation import (
    BODY_TOO_LARGE,
    INVALID_JSON,
    check_no_nul,
    parse_json_object,
)

__all__ = ["INVALID_JSON"]  # re-exported: the API's own message

METHOD_NOT_ALLOWED = "{method} is not allowed here (allowed: {allowed})."
NOT_FOUND = "Not found."
FORBIDDEN = "Not allowed."
CSRF_FAILED = "The request was refused (CSRF check failed: {reason}). Reload the page and retry."
BAD_REQUEST = "The request could not be read."
SERVER_ERROR = "Something went wrong on the server. Try again."
READ_METHODS = ("GET", "HEAD")


def error_response(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = request.body
    except RequestDataTooBig:
        raise ChatError(BODY_TOO_LARGE, status=413) from None
    return parse_json_object(body) if body else {}


def api_view(*methods: str) -> Callable[..., Any]:
    """Allowed methods (else a JSON 405), the caller's identity as first argument (a session
    is created only for a write), ChatError -> JSON error."""
    allowed = ", ".join(methods)

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                message = METHOD_NOT_ALLOWED.format(method=request.method, allowed=allowed)
                response = error_response(message, 405)
                response["Allow"] = allowed
                return response
            identity = identity_from_request(request, create=request.method not in READ_METHODS)
            try:
                return view(request, identity, *args, **kwargs)
            except ChatError as exc:
                return error_response(exc.message, exc.status)

        return wrapper

    return decorate


@api_view("GET")
def models(request: HttpRequest, identity: Identity) -> HttpResponse:
    config = get_chat_config()
    return JsonResponse(
        {
            "models": [m.to_public_dict() for m in config.listed_models],
            "active_model": selectors.active_model_id(identity=identity),
        }
    )


@api_view("GET", "POST", "DELETE")
def conversations(request: HttpRequest, identity: Identity) -> HttpResponse:
    if request.method == "POST":
        body = _json_body(request)
        # An assistant's chat is created with its first message, like any other.
        assistant_id = body.get("assistant")
        assistant = selectors.assistant_get(assistant_id=assistant_id) if assistant_id else None
        conversation = services.conversation_create(
            identity=identity,
            model=body.get("model"),
            system_prompt=body.get("system_prompt"),
            assistant=assistant,
        )
        return JsonResponse(selectors.conversation_detail(conversation=conversation), status=201)
    if request.method == "DELETE":
        services.conversation_delete_all(identity=identity)
        return HttpResponse(status=204)
    query = request.GET.get("q", "")
    try:
        check_no_nul(query)
    except ChatError as exc:
        return error_response(exc.message, exc.status)
    return JsonResponse(
        {"conversations": selectors.conversation_list_data(identity=identity, query=query)}
    )


@api_view("GET", "PATCH", "DELETE")
def conversation(request: HttpRequest, identity: Identity, conversation_id: Any) -> HttpResponse:
    found = selectors.conversation_get(identity=identity, conversation_id=conversation_id)
    if request.method == "DELETE":
        services.conversation_delete(conversation=found)
        return HttpResponse(status=204)
    if request.method == "PATCH":
        body = _json_body(request)
        found = services.conversation_update(
            conversation=found,
            title=body.get("title"),
            model=body.get("model"),
            system_prompt=body.get("system_prompt"),
        )
    return JsonResponse(selectors.conversation_detail(conversation=found))


@api_view("POST")
def conversation_share(
    request: HttpRequest, identity: Identity, conversation_id: Any
) -> HttpResponse:
    """Shares the conversation; `{"leaf_id": id}` names the branch on the sharer's screen."""
    found = selectors.conversation_get(identity=identity, conversation_id=conversation_id)
    # The body is optional (older pages post none): only a JSON one is read.
    body = _json_body(request) if request.content_type == "application/json" else {}
    leaf_id = body.get("leaf_id")
    share = services.conversation_share(identity=identity, conversation=found, leaf_id=leaf_id)
    return JsonResponse({"share_id": share.id, "url": f"/r/{share.id}"}, status=201)


@api_view("POST")
def message_score(
    request: HttpRequest, identity: Identity, conversation_id: Any, message_id: Any
) -> HttpResponse:
    """chat-ui's vote on an answer: `{"score": 1 | -1 | 0}`."""
    message = services.message_set_score(
        identity=identity,
        conversation_id=conversation_id,
        message_id=message_id,
        score=_json_body(request).get("score"),
    )
    return JsonResponse({"id": str(message.id), "score": message.score})


@api_view("POST")
def conversation_attachments(
    request: HttpRequest, identity: Identity, conversation_id: Any
) -> HttpResponse:
    """Uploads one file (multipart field `file`) for the next message; answers its File."""
    try:
        upload = request.FILES.get("file")
    except RequestDataTooBig:
        raise ChatError(BODY_TOO_LARGE, status=413) from None
    attachment = attachments.attachment_upload(
        identity=identity, conversation_id=conversation_id, upload=upload
    )
    return _attached(attachment)


@api_view("POST")
def conversation_attachment_url(
    request: HttpRequest, identity: Identity, conversation_id: Any
) -> HttpResponse:
    """Fetches `{"url": ...}` (public addresses only) for the next message; answers its File."""
    attachment = url_attachments.attachment_from_url(
        identity=identity, conversation_id=conversation_id, url=_json_body(request).get("url")
    )
    return _attached(attachment)


def _attached(attachment: Any) -> JsonResponse:
    """A stored file, with the notice the user is shown when a document will be cut."""
    notice = getattr(attachment, "notice", "")
    body = file_to_dict(attachment) | ({"notice": notice} if notice else {})
    return JsonResponse(body, status=201)


def file_response(attachment: Any) -> FileResponse:
    """A stored file, as what its content is: never sniffed again, never run by the page
    (images inline, text as plain text, with the name it was uploaded with)."""
    inline = attachment.kind == "image"
    content_type = attachment.mime if inline else "text/plain; charset=utf-8"
    if attachment.mime in DOCUMENT_MIMES and attachment.mime != "text/html":
        content_type = attachment.mime  # a download, never shown in the page
    response = FileResponse(
        attachment.file.open("rb"),
        content_type=content_type,
        as_attachment=not inline,
        filename=attachment.name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@api_view("GET")
def attachment_file(request: HttpRequest, identity: Identity, attachment_id: Any) -> HttpResponse:
    """A file of one's own conversations; anyone else's is a 404."""
    return file_response(
        attachments.attachment_for_owner(identity=identity, attachment_id=attachment_id)
    )


@api_view("GET", "PATCH")
def user_settings(request: HttpRequest, identity: Identity) -> HttpResponse:
    if request.method == "PATCH":
        body = _json_body(request)
        services.settings_update(
            identity=identity,
            active_model=body.get("active_model"),
            custom_prompts=body.get("custom_prompts"),
            theme=body.get("theme"),
        )
    return JsonResponse(selectors.settings_detail(identity=identity))


@api_view("GET")
def export(request: HttpRequest, identity: Identity) -> HttpResponse:
    response = JsonResponse(selectors.conversation_export(identity=identity))
    response["Content-Disposition"] = 'attachment; filename="conversations.json"'
    return response


@api_view("GET", "POST")
def api_tokens(request: HttpRequest, identity: Identity) -> HttpResponse:
    """The user's personal API tokens (settings); POST `{"name"}` creates one and answers
    its secret in `token`, this once."""
    if request.method == "POST":
        token, raw = services.api_token_create(
            user=request.user, name=_json_body(request).get("name")
        )
        response = JsonResponse(api_token_to_dict(token) | {"token": raw}, status=201)
        response["Cache-Control"] = "no-store"
        return response
    if not request.user.is_authenticated:
        raise ChatError(services.TOKENS_NEED_LOGIN, status=403)
    return JsonResponse({"tokens": selectors.api_token_list(user=request.user)})


@api_view("DELETE")
def api_token(request: HttpRequest, identity: Identity, token_id: int) -> HttpResponse:
    """Revokes one of the user's tokens: it stops working at once."""
    token = services.api_token_revoke(user=request.user, token_id=token_id)
    return JsonResponse(api_token_to_dict(token))


# --- error pages of /api/ paths (config/urls.py, CSRF_FAILURE_VIEW) ---------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413 with the API's error shape."""
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return error_response(BODY_TOO_LARGE, 413)
    return error_response(BAD_REQUEST, 400)


def _error_page(request: HttpRequest, template: str, status: int) -> HttpResponse:
    """A styled error page (templates/404.html...) with the app's name and a way home."""
    return render(request, template, base_context(request), status=status)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return _error_page(request, "404.html", 404)
    return error_response(NOT_FOUND, 404)


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return _error_page(request, "403.html", 403)
    return error_response(FORBIDDEN, 403)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's own handler renders templates/500.html without the request (nothing that
    failed is asked again)."""
    if not _is_api(request):
        return defaults.server_error(request)
    return error_response(SERVER_ERROR, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if not _is_api(request):
        return django_csrf_failure(request, reason=reason)
    return error_response(CSRF_FAILED.format(reason=reason.rstrip(".")), 403)
