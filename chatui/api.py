"""The JSON API of docs/chat-protocol.md (`/api/...`): thin views over selectors and services.

Session auth; the CSRF middleware guards every mutating call (`X-CSRFToken`). Errors are
`{"error": message}` with the `ChatError` status; another owner's conversation is a 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from chatui import selectors, services
from chatui.apps import get_chat_config
from chatui.errors import ChatError
from chatui.identity import Identity, identity_from_request

INVALID_JSON = "The request body must be a JSON object."


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise ChatError(INVALID_JSON) from None
    if not isinstance(body, dict):
        raise ChatError(INVALID_JSON)
    return body


def api_view(*methods: str) -> Callable[..., Any]:
    """Allowed methods, the caller's identity as first argument, ChatError -> JSON error."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @require_http_methods(list(methods))
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, identity_from_request(request), *args, **kwargs)
            except ChatError as exc:
                return JsonResponse({"error": exc.message}, status=exc.status)

        return wrapper

    return decorate


@api_view("GET")
def models(request: HttpRequest, identity: Identity) -> HttpResponse:
    config = get_chat_config()
    return JsonResponse(
        {
            "models": [m.to_public_dict() for m in config.models if not m.unlisted],
            "active_model": selectors.active_model_id(identity=identity),
        }
    )


@api_view("GET", "POST", "DELETE")
def conversations(request: HttpRequest, identity: Identity) -> HttpResponse:
    if request.method == "POST":
        body = _json_body(request)
        conversation = services.conversation_create(
            identity=identity, model=body.get("model"), system_prompt=body.get("system_prompt")
        )
        return JsonResponse(selectors.conversation_detail(conversation=conversation), status=201)
    if request.method == "DELETE":
        services.conversation_delete_all(identity=identity)
        return HttpResponse(status=204)
    query = request.GET.get("q", "")
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
    found = selectors.conversation_get(identity=identity, conversation_id=conversation_id)
    share = services.conversation_share(identity=identity, conversation=found)
    return JsonResponse({"share_id": share.id, "url": f"/r/{share.id}"}, status=201)


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
