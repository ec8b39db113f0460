"""The OpenAI-compatible routes TGI serves: chat completions, completions, models.

Parameters map onto TGI's (temperature 0 means greedy, otherwise sampling is on), streams end
with `data: [DONE]`, and in-stream errors arrive as `{"error": {"message", "http_status_code"}}`.
Must not import torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inference.api.contract import OPENAI_STREAM_ERROR, event_stream
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
    stream_headers,
    unless_disconnected,
    validate,
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
    Chunk,
    CompletionComplete,
    CompletionFinal,
    CompletionRequest,
    DeltaToolCall,
    Function,
    GenerateParameters,
    GrammarJson,
    ModelInfo,
    ModelsInfo,
    TextMessage,
    ToolCall,
    ToolCallDelta,
    ToolCallFunction,
    ToolCallMessage,
    Usage,
)
from inference.api.sse import DONE, EventStreamResponse, frame
from inference.api.state import MAX_CLIENT_BATCH_SIZE, ServerState, get_state
from inference.api.tools import ToolCallStream, ToolOutput, parse_tool_output, plan_tools
from inference.api.validation import (
    CLIENT_BATCH_SIZE,
    EMPTY_PROMPT_LIST,
    MAX_COMPLETION_TOKENS,
    N_CHOICES,
    SUFFIX,
    TOP_N_TOKENS,
    ValidRequest,
)
from inference.config import EngineConfig
from inference.types import FinishReason, Permit

router = APIRouter(tags=["Text Generation Inference"], route_class=StrictJsonRoute)

# OpenAI has no `eos_token`/`stop_sequence`: both are a natural stop.
OPENAI_FINISH_REASONS = {
    FinishReason.LENGTH: "length",
    FinishReason.EOS_TOKEN: "stop",
    FinishReason.STOP_SEQUENCE: "stop",
}


def openai_finish_reason(reason: FinishReason) -> str:
    return OPENAI_FINISH_REASONS[FinishReason(reason)]


def _stream_doc(schema: str) -> dict[int | str, dict]:
    return {
        200: {
            "description": "Generated Completion: a JSON document, or with `stream` true events "
            f"of `{schema}` ended by `[DONE]` (a failure mid-stream sends "
            '`{"error": {"message", "http_status_code"}}` before it)',
            "content": {
                "application/json": {},
                "text/event-stream": event_stream(schema, OPENAI_STREAM_ERROR, done=True),
            },
        }
    }


def sampling_parameters(
    *,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    seed: int | None,
    stop: str | list[str] | None,
    frequency_penalty: float | None,
    repetition_penalty: float | None = None,
    top_n_tokens: int | None = None,
    grammar: Any = None,
) -> GenerateParameters:
    """OpenAI knobs as TGI parameters: sampling unless temperature is 0, always details."""
    greedy = temperature == 0.0
    return GenerateParameters(
        max_new_tokens=max_tokens,
        do_sample=not greedy,
        temperature=None if greedy else temperature,
        top_p=top_p,
        seed=seed,
        stop=[stop] if isinstance(stop, str) else stop,
        frequency_penalty=frequency_penalty,
        repetition_penalty=repetition_penalty,
        top_n_tokens=top_n_tokens,
        details=True,
        grammar=grammar,
    )


def error_event(error: ApiError) -> bytes:
    return frame(
        json.dumps({"error": {"message": error.message, "http_status_code": error.status_code}})
    )


def usage_of(sequence: Generated, valid: ValidRequest) -> Usage:
    prompt_tokens = sequence.input_length or valid.input_length
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=sequence.generated_tokens,
        total_tokens=prompt_tokens + sequence.generated_tokens,
    )


def response_model_name(state: ServerState, requested: str | None) -> str:
    """`model` is not used to route; it is echoed when given (OpenAI clients expect that)."""
    return requested or state.model_id


# ----------------------------------------------------------------------- chat completions


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
    responses={**_stream_doc("ChatCompletionChunk"), **ERROR_RESPONSES},
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
    try:
        sequence = await unless_disconnected(request, generate_one(state.attached, valid, permit))
    except ApiError as error:
        count_failure(state, error)
        raise
    finally:
        permit.release()
    timings = record_success(state, start, sequence)
    finish_reason = openai_finish_reason(sequence.finish_reason)
    message: TextMessage | ToolCallMessage = TextMessage(role="assistant", content=sequence.text)
    if plan_tools(body) is not None:
        output = parse_tool_output(sequence.text)
        message = answer_message(output, completion_id)
        finish_reason = TOOL_CALLS if output.is_call else finish_reason
    completion = ChatCompletion(
        id=completion_id,
        created=int(time.time()),
        model=model,
        system_fingerprint=state.system_fingerprint,
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
    created = int(time.time())
    sequence = Generated(input_length=valid.input_length)

    def chunk(choices: list[ChatCompletionChoice], usage: Usage | None = None) -> bytes:
        return frame(
            ChatCompletionChunk(
                id=completion_id,
                created=created,
                model=model,
                system_fingerprint=state.system_fingerprint,
                choices=choices,
                usage=usage,
            ).model_dump_json()
        )

    async def text_chunks() -> AsyncIterator[bytes]:
        async for event in engine_events(state.attached, valid, permit):
            sequence.add(event)
            logprobs = None
            if body.logprobs:
                step = Generated(tokens=sequence.tokens[-1:], top_tokens=sequence.top_tokens[-1:])
                logprobs = chat_logprobs(step, valid.params.top_n_tokens)
            content = "" if event.token.special else event.text
            finish = openai_finish_reason(sequence.finish_reason) if event.is_final else None
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


# ---------------------------------------------------------------------------- completions


async def prepare_completions(state: ServerState, body: CompletionRequest) -> list[ValidRequest]:
    if body.suffix is not None:
        raise ValidationFailed(SUFFIX)
    if body.n not in (None, 1):
        raise ValidationFailed(N_CHOICES)
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    if not prompts:
        raise ValidationFailed(EMPTY_PROMPT_LIST)
    if len(prompts) > MAX_CLIENT_BATCH_SIZE:
        raise ValidationFailed(CLIENT_BATCH_SIZE.format(MAX_CLIENT_BATCH_SIZE))
    params = sampling_parameters(
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=body.stop,
        frequency_penalty=body.frequency_penalty,
        repetition_penalty=body.repetition_penalty,
    )
    return [
        await validate(
            state, prompt, params, stream=body.stream, presence_penalty=body.presence_penalty
        )
        for prompt in prompts
    ]


@router.post(
    "/v1/completions",
    response_model=CompletionFinal,
    responses={**_stream_doc("Chunk"), **ERROR_RESPONSES},
    summary="Complete a prompt (OpenAI compatible)",
    operation_id="completions",
)
async def completions(body: CompletionRequest, request: Request) -> Response:
    state = get_state(request)
    start = time.monotonic()
    permit, valids = await admit_validated(state, lambda: prepare_completions(state, body))
    model = response_model_name(state, body.model)
    completion_id = f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def make_chunk(choice: CompletionComplete, usage: Usage | None = None) -> bytes:
        return frame(
            Chunk(
                id=completion_id,
                created=created,
                model=model,
                system_fingerprint=state.system_fingerprint,
                choices=[choice],
                usage=usage,
            ).model_dump_json()
        )

    if body.stream:
        streams = [
            completion_events(state, valid, permit, index, start, make_chunk)
            for index, valid in enumerate(valids)
        ]
        return EventStreamResponse(
            merged_then_done(streams, permit),
            keepalive_interval=state.keepalive_interval,
            headers=stream_headers(state, "".join(v.inputs for v in valids)),
        )
    engine = state.attached
    try:
        work = asyncio.gather(*(generate_one(engine, v, permit) for v in valids))
        sequences = await unless_disconnected(request, work)
    except ApiError as error:
        count_failure(state, error)
        raise
    finally:
        permit.release()
    choices, prompt_tokens, completion_tokens = [], 0, 0
    for index, (valid, sequence) in enumerate(zip(valids, sequences, strict=True)):
        timings = record_success(state, start, sequence)
        usage = usage_of(sequence, valid)
        prompt_tokens += usage.prompt_tokens
        completion_tokens += usage.completion_tokens
        choices.append(
            CompletionComplete(
                index=index,
                text=sequence.text,
                logprobs=None,
                finish_reason=openai_finish_reason(sequence.finish_reason),
            )
        )
    final = CompletionFinal(
        id=completion_id,
        created=created,
        model=model,
        system_fingerprint=state.system_fingerprint,
        choices=choices,
        usage=Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
    )
    headers = generate_headers(state, valids[0].inputs, timings, sequences[0])
    headers["x-prompt-tokens"] = str(prompt_tokens)
    headers["x-generated-tokens"] = str(completion_tokens)
    return JSONResponse(final.model_dump(mode="json"), headers=headers)


async def completion_events(
    state: ServerState,
    valid: ValidRequest,
    permit: Permit,
    index: int,
    start: float,
    make_chunk: Callable[..., bytes],
) -> AsyncIterator[bytes]:
    """One prompt's chunks; the last one carries the finish reason and usage (as TGI)."""
    sequence = Generated(input_length=valid.input_length)
    try:
        async for event in engine_events(state.attached, valid, permit):
            sequence.add(event)
            text = "" if event.token.special else event.text
            if not event.is_final:
                yield make_chunk(CompletionComplete(index=index, text=text, finish_reason=None))
                continue
            record_success(state, start, sequence)
            choice = CompletionComplete(
                index=index, text=text, finish_reason=openai_finish_reason(sequence.finish_reason)
            )
            yield make_chunk(choice, usage_of(sequence, valid))
            return
        raise IncompleteGeneration()
    except ApiError as error:
        count_failure(state, error)
        yield error_event(error)


async def merged_then_done(
    streams: list[AsyncIterator[bytes]], permit: Permit
) -> AsyncIterator[bytes]:
    """Interleave several prompts' chunks as they come, then `[DONE]`."""
    try:
        if len(streams) == 1:
            async for item in streams[0]:
                yield item
        else:
            async for item in _merge(streams):
                yield item
    finally:
        permit.release()
        for stream in streams:
            with contextlib.suppress(BaseException):
                await stream.aclose()  # type: ignore[attr-defined]
    yield DONE


async def _merge(streams: list[AsyncIterator[bytes]]) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def pump(stream: AsyncIterator[bytes]) -> None:
        try:
            async for item in stream:
                await queue.put(item)
        finally:
            await queue.put(None)

    tasks = [asyncio.ensure_future(pump(s)) for s in streams]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------- models


@router.get(
    "/v1/models",
    response_model=ModelsInfo,
    summary="Get model info",
    operation_id="openai_get_model_info",
)
async def openai_get_model_info(request: Request) -> ModelsInfo:
    state = get_state(request)
    model_id = state.model_id
    return ModelsInfo(
        data=[ModelInfo(id=model_id, created=int(state.started_at), owned_by=model_id)]
    )
