"""`GET /api/v1/models` (OpenAI's list; ids are the MODELS names a request names) and the
token owner's conversations: list, read, delete. Another user's conversation is a 404, as
on the page (`selectors.conversation_get` finds only the identity's own rows)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from chatui import selectors, services
from chatui.api_v1.auth import token_view
from chatui.chat_config import get_chat_config
from chatui.identity import Identity

OWNER = "chatui"


@token_view("GET")
async def models(request: HttpRequest, identity: Identity) -> HttpResponse:
    config = get_chat_config()
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"id": m.id, "object": "model", "created": 0, "owned_by": OWNER}
                for m in config.listed_models
            ],
        }
    )


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
