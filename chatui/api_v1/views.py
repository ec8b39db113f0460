"""`GET /api/v1/models` (OpenAI's list; ids are the MODELS names a request names) and the
token owner's conversations: list, read, delete. Another user's conversation is a 404, as
on the page (`selectors.conversation_get` finds only the identity's own rows)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from chatui import selectors, services
from chatui.api_v1.auth import token_view
from chatui.api_v1.errors import MODEL_NOT_FOUND, openai_error
from chatui.chat_config import get_chat_config
from chatui.identity import Identity
from chatui.validation import describe

OWNER = "chatui"


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": OWNER}


@token_view("GET")
async def models(request: HttpRequest, identity: Identity) -> HttpResponse:
    listed = get_chat_config().listed_models
    return JsonResponse({"object": "list", "data": [_model(m.id) for m in listed]})


@token_view("GET")
async def model(request: HttpRequest, identity: Identity, model_id: str) -> HttpResponse:
    """One listed model (`client.models.retrieve`); its id may hold slashes."""
    if model_id not in {m.id for m in get_chat_config().listed_models}:
        return openai_error(MODEL_NOT_FOUND.format(model=describe(model_id)), 404, "not_found")
    return JsonResponse(_model(model_id))


@token_view("GET")
async def conversations(request: HttpRequest, identity: Identity) -> HttpResponse:
    data = await sync_to_async(selectors.conversation_list_data)(identity=identity)
    return JsonResponse({"object": "list", "data": data})


def _conversation(identity: Identity, conversation_id: Any, *, delete: bool) -> dict[str, Any]:
    found = selectors.conversation_get(identity=identity, conversation_id=conversation_id)
    if delete:
        services.conversation_delete(conversation=found)
        return {}
    return selectors.conversation_detail(conversation=found)


@token_view("GET", "DELETE")
async def conversation(
    request: HttpRequest, identity: Identity, conversation_id: Any
) -> HttpResponse:
    """The conversation as the page reads it (docs/chat-protocol.md), or 204 once deleted."""
    delete = request.method == "DELETE"
    data = await sync_to_async(_conversation)(identity, conversation_id, delete=delete)
    return HttpResponse(status=204) if delete else JsonResponse(data)
