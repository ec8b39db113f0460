"""`POST /api/v1/chat/completions`, OpenAI-compatible, streamed (server-sent events,
`data: [DONE]` last) or not. The request becomes a conversation of the token's owner
(`services.api_chat_start`: the page's limits and storage) whose answer is the page's own
task (`chatui.streaming.answer`: the same endpoints and failover); this view only listens
to it. The conversation's id comes back as the `X-Conversation-Id` header (and, not
streamed, as `conversation_id` in the body).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from chatui import selectors, services
from chatui.api_v1.answers import AnswerEvents, chunk, completion
from chatui.api_v1.auth import token_view
from chatui.api_v1.errors import error_body, openai_error
from chatui.api_v1.schemas import ChatCompletionRequest, parse_request
from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.streaming import answer
from chatui.validation import BODY_TOO_LARGE, parse_json_object

CONVERSATION_HEADER = "X-Conversation-Id"


def _body(request: HttpRequest) -> ChatCompletionRequest:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ChatError(BODY_TOO_LARGE, status=413) from None
    return parse_request(parse_json_object(raw or b"null"))


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _stream(
    events: AnswerEvents, task: asyncio.Task[None] | None, body: ChatCompletionRequest
) -> AsyncIterator[str]:
    """The answer as server-sent events: the role, each piece of text, the finish reason (or
    the error), the usage when asked for, `[DONE]`."""
    message_id, model = events.message_id, body.model
    yield _sse(chunk(message_id=message_id, model=model, delta={"role": "assistant"}))
    async for text in events.tokens(task):
        yield _sse(chunk(message_id=message_id, model=model, delta={"content": text}))
    end = events.end
    if end.error:
        yield _sse(error_body(end.error, 502, "generation_failed"))
    else:
        yield _sse(
            chunk(message_id=message_id, model=model, delta={}, finish_reason=end.finish_reason)
        )
        if body.include_usage:
            counts = await sync_to_async(selectors.message_token_counts)(message_id=message_id)
            end.prompt_tokens, end.completion_tokens = counts
            usage = chunk(message_id=message_id, model=model, delta={}) | {"choices": []}
            yield _sse(usage | {"usage": end.usage()})
    yield "data: [DONE]\n\n"


async def _whole(
    events: AnswerEvents, task: asyncio.Task[None] | None, body: ChatCompletionRequest
) -> HttpResponse:
    """The answer once it is over, as one `chat.completion` (or the error)."""
    async for _ in events.tokens(task):
        pass
    end = events.end
    if end.error:
        return openai_error(end.error, 502, "generation_failed")
    counts = await sync_to_async(selectors.message_token_counts)(message_id=events.message_id)
    end.prompt_tokens, end.completion_tokens = counts
    data = completion(
        message_id=events.message_id,
        model=body.model,
        conversation_id=events.conversation_id,
        end=end,
    )
    return JsonResponse(data)


@token_view("POST")
async def chat_completions(request: HttpRequest, identity: Identity) -> HttpResponse:
    body = _body(request)
    if body.conversation_id is None:
        generation = await sync_to_async(services.api_chat_start)(
            identity=identity, model=body.model, turns=body.turns()
        )
    else:
        generation = await sync_to_async(services.api_chat_continue)(
            identity=identity,
            conversation_id=body.conversation_id,
            model=body.model,
            turns=body.turns(),
        )
    conversation_id = str(generation.conversation_id)
    events = AnswerEvents(conversation_id, str(generation.assistant_message.id))
    events.start()  # before the answer's first event
    try:
        running = await answer.generation_start(generation)
    except BaseException:
        events.stop()
        raise
    if running.task is not None:  # no request left watching an answer that is over
        running.task.add_done_callback(lambda _: events.stop())
    if body.stream:
        response: HttpResponse = StreamingHttpResponse(
            _stream(events, running.task, body), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
    else:
        response = await _whole(events, running.task, body)
    response[CONVERSATION_HEADER] = conversation_id
    return response
