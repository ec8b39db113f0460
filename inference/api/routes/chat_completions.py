"""`POST /v1/chat/completions`: OpenAI's chat completions API, with tools and structured output.

A request is rendered with the model's chat template; tools and `response_format` become a
grammar. A tool answer is a `tool_calls` message (streamed as `tool_calls` deltas).
Must not import torch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inference.api.errors import ApiError, IncompleteGeneration, ValidationFailed
from inference.api.generation import Generated, engine_events, generate_one
from inference.api.grammars import response_format_grammar
from inference.api.json_body import StrictJsonRoute
from inference.api.prompts import render_chat
from inference.api.routes.common import (
    ERROR_RESPONSES,
    admit_validated,
    count_failure,
    generate_headers,
    off_loop,
    record_success,
    run_holding_permit,
    stream_headers,
    validate,
)
from inference.api.routes.openai_common import (
    CompletionMeta,
    error_event,
    openai_finish_reason,
    response_model_name,
    sampling_parameters,
    stream_doc,
    usage_of,
)
from inference.api.schemas import (
    ChatCompletion,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionComplete,
    ChatCompletionDelta,
    ChatCompletionLogprob,
    ChatCompletionLogprobs,
    ChatCompletionTopLogprob,
    ChatRequest,
    DeltaToolCall,
    Function,
    GenerateParameters,
    GrammarJson,
    TextMessage,
    ToolCall,
    ToolCallDelta,
    ToolCallFunction,
    ToolCallMessage,
    Usage,
)
from inference.api.sse import DONE, EventStreamResponse
from inference.api.state import ServerState, get_state
from inference.api.stream_frames import ChatChunkFrames
from inference.api.tools import ToolCallStream, ToolOutput, parse_tool_output, plan_tools
from inference.api.validation import (
    MAX_COMPLETION_TOKENS,
    N_CHOICES,
    TOP_N_TOKENS,
    ValidRequest,
)
from inference.config import EngineConfig
from inference.types import Permit

router = APIRouter(tags=["Text Generation Inference"], route_class=StrictJsonRoute)

TOOL_CALLS = "tool_calls"  # the finish reason of an answer that calls a tool


def tool_call_id(completion_id: str) -> str:
    return "call_" + completion_id.removeprefix("chatcmpl-")[:24]


def answer_message(output: ToolOutput, completion_id: str) -> TextMessage | ToolCallMessage:
    """A tool answer as OpenAI's message: the call, or the words of `no_tool`."""
    if not output.is_call:
        return TextMessage(role="assistant", content=output.content or "")
    assert output.name is not None
    call = ToolCall(
        id=tool_call_id(completion_id),
        function=ToolCallFunction(name=output.name, arguments=output.arguments),
    )
    return ToolCallMessage(role="assistant", tool_calls=[call])


def chat_logprobs(sequence: Generated, top_n: int) -> ChatCompletionLogprobs:
    content = []
    for i, token in enumerate(sequence.tokens):
        alternatives = sequence.top_tokens[i] if top_n and i < len(sequence.top_tokens) else []
        content.append(
            ChatCompletionLogprob(
                token=token.text,
                logprob=token.logprob,
                top_logprobs=[
                    ChatCompletionTopLogprob(token=t.text, logprob=t.logprob) for t in alternatives
                ],
            )
        )
    return ChatCompletionLogprobs(content=content)


def chat_max_tokens(body: ChatRequest, limits: EngineConfig) -> int | None:
    """`max_tokens`, else OpenAI's newer `max_completion_tokens`; one given but unused must
    still be a length this server could generate (the document bounds both)."""
    if body.max_tokens is None:
        return body.max_completion_tokens
    unused = body.max_completion_tokens
    if unused is not None and not 0 < unused < limits.max_total_tokens:
        raise ValidationFailed(MAX_COMPLETION_TOKENS.format(limits.max_total_tokens, unused))
    return body.max_tokens


def chat_parameters(state: ServerState, body: ChatRequest) -> GenerateParameters:
    """The rules only chat requests have, then their knobs as TGI parameters (tools and
    `response_format` become the grammar)."""
    if body.n not in (None, 1):
        raise ValidationFailed(N_CHOICES)
    plan = plan_tools(body)
    if plan is not None:
        grammar: Any = GrammarJson(type="json", value=plan.schema)
    else:
        grammar = response_format_grammar(body.response_format)
    assert state.validator is not None
    limits = state.validator.limits
    top_logprobs = body.top_logprobs
    if top_logprobs is not None and not 0 <= top_logprobs <= limits.max_top_n_tokens:
        raise ValidationFailed(TOP_N_TOKENS.format(limits.max_top_n_tokens, top_logprobs))
    return sampling_parameters(
        max_tokens=chat_max_tokens(body, limits),
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=body.stop,
        frequency_penalty=body.frequency_penalty,
        top_n_tokens=top_logprobs if body.logprobs else None,
        grammar=grammar,
        ignore_eos=body.ignore_eos,
    )


async def prepare_chat(state: ServerState, body: ChatRequest) -> ValidRequest:
    """Check, render the chat template and tokenise, all but the checks off the event loop."""
    params = chat_parameters(state, body)
    inputs = await off_loop(render_chat, state.attached.tokenizer, body.messages, plan_tools(body))
    return await validate(
        state,
        inputs,
        params,
        stream=body.stream,
        add_special_tokens=False,  # the template already holds every special token
        presence_penalty=body.presence_penalty,
    )


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={**stream_doc("ChatCompletionChunk"), **ERROR_RESPONSES},
    summary="Generate a chat completion (OpenAI compatible)",
    operation_id="chat_completions",
)
async def chat_completions(body: ChatRequest, request: Request) -> Response:
    state = get_state(request)
    start = time.monotonic()
    permit, valid = await admit_validated(state, lambda: prepare_chat(state, body))
    model = response_model_name(state, body.model)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventStreamResponse(
            chat_events(state, valid, start, permit, model, completion_id, body, include_usage),
            keepalive_interval=state.keepalive_interval,
            headers=stream_headers(state, valid.inputs),
        )
    work = generate_one(state.attached, valid, permit)
    sequence = await run_holding_permit(state, request, permit, work)
    timings = record_success(state, start, sequence)
    finish_reason = openai_finish_reason(sequence.finish_reason)
    message: TextMessage | ToolCallMessage = TextMessage(role="assistant", content=sequence.text)
    if plan_tools(body) is not None:
        output = parse_tool_output(sequence.text)
        message = answer_message(output, completion_id)
        finish_reason = TOOL_CALLS if output.is_call else finish_reason
    meta = CompletionMeta(completion_id, int(time.time()), model, state.system_fingerprint)
    completion = ChatCompletion(
        **meta.fields(),
        choices=[
            ChatCompletionComplete(
                index=0,
                message=message,
                logprobs=chat_logprobs(sequence, valid.params.top_n_tokens)
                if body.logprobs
                else None,
                finish_reason=finish_reason,
            )
        ],
        usage=usage_of(sequence, valid),
    )
    headers = generate_headers(state, valid.inputs, timings, sequence)
    return JSONResponse(completion.model_dump(mode="json"), headers=headers)


async def chat_events(
    state: ServerState,
    valid: ValidRequest,
    start: float,
    permit: Permit,
    model: str,
    completion_id: str,
    body: ChatRequest,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    meta = CompletionMeta(completion_id, int(time.time()), model, state.system_fingerprint)
    sequence = Generated(input_length=valid.input_length)

    def chunk(choices: list[ChatCompletionChoice], usage: Usage | None = None) -> bytes:
        return meta.chunk(ChatCompletionChunk, choices, usage)

    async def text_chunks() -> AsyncIterator[bytes]:
        frames = ChatChunkFrames(meta.fields())
        async for event in engine_events(state.attached, valid, permit):
            sequence.add(event)
            content = "" if event.token.special else event.text
            finish = openai_finish_reason(sequence.finish_reason) if event.is_final else None
            if not body.logprobs:
                yield frames.content(content, finish)
            else:
                step = Generated(tokens=sequence.tokens[-1:], top_tokens=sequence.top_tokens[-1:])
                logprobs = chat_logprobs(step, valid.params.top_n_tokens)
                yield chunk(
                    [
                        ChatCompletionChoice(
                            index=0,
                            delta=ChatCompletionDelta(role="assistant", content=content),
                            logprobs=logprobs,
                            finish_reason=finish,
                        )
                    ]
                )
            if event.is_final:
                record_success(state, start, sequence)
                return
        raise IncompleteGeneration()

    try:
        if plan_tools(body) is not None:
            chunks = tool_chunks(state, valid, permit, start, sequence, completion_id, chunk)
        else:
            chunks = text_chunks()
        async for item in chunks:
            yield item
        if include_usage:
            yield chunk([], usage_of(sequence, valid))
    except ApiError as error:
        count_failure(state, error)
        yield error_event(error)
    finally:
        permit.release()
    yield DONE


async def tool_chunks(
    state: ServerState,
    valid: ValidRequest,
    permit: Permit,
    start: float,
    sequence: Generated,
    completion_id: str,
    chunk: Callable[..., bytes],
) -> AsyncIterator[bytes]:
    """A tool answer's stream: `tool_calls` deltas (the name, then the arguments' text) and a
    last chunk with `finish_reason` "tool_calls"; a `no_tool` answer comes as one content
    delta at the end."""
    calls = ToolCallStream()
    call_id = tool_call_id(completion_id)

    def tool_chunk(pieces: list, finish: str | None = None) -> bytes:
        deltas = [DeltaToolCall(index=0, id=call_id, function=piece) for piece in pieces]
        return chunk(
            [
                ChatCompletionChoice(
                    index=0,
                    delta=ToolCallDelta(role="assistant", tool_calls=deltas),
                    finish_reason=finish,
                )
            ]
        )

    def content_chunk(text: str, finish: str | None = None) -> bytes:
        delta = ChatCompletionDelta(role="assistant", content=text)
        return chunk([ChatCompletionChoice(index=0, delta=delta, finish_reason=finish)])

    async for event in engine_events(state.attached, valid, permit):
        sequence.add(event)
        if not event.is_final:
            for piece in calls.feed("" if event.token.special else event.text):
                yield tool_chunk([piece])
            if words := calls.content_delta():
                yield content_chunk(words)
            continue
        pieces = [] if event.token.special else calls.feed(event.text)
        record_success(state, start, sequence)
        output, owed = calls.finish()
        if output.is_call:
            pieces += owed
            name = next((p.name for p in pieces if p.name), None)
            last = Function(name=name, arguments="".join(p.arguments for p in pieces))
            yield tool_chunk([last], TOOL_CALLS)
        else:  # words: those not streamed yet (all of them if the answer is not JSON)
            words, sent = output.content or "", calls.sent_content
            if words.startswith(sent):
                words = words[len(sent) :]
            yield content_chunk(words, openai_finish_reason(sequence.finish_reason))
        return
    raise IncompleteGeneration()
