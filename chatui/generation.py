"""Running answers: one asyncio task per generating conversation, owned by the server process.

A generation outlives the websocket that asked for it (closing the tab does not stop it).
It streams from `chatui.endpoints.stream_generation`, fans every event out to the
conversation's sockets (`chatui.fanout`: this process's directly, other processes' through the
Channels group `conversation_<id>`), saves the text in batches off the token path (every
`CHATUI_SAVE_INTERVAL_S` or `CHATUI_SAVE_EVERY_TOKENS` tokens, whichever comes first) and
once complete, and keeps a heartbeat on the message so that a reaper in any process can mark
answers of a dead process as interrupted.

Stop and resync requests reach the task directly through this process's registry, or through
the channel layer group `generation_<id>` that each task listens on from before its first
event (another process, e.g. behind Redis).

The database may go away for a while: the batched saves and heartbeats that fail are retried
by the next, the final save is retried until it lands (the pages have every token meanwhile),
and this process's reaper never marks its own running answers (whose heartbeats it missed).

Tokens carry `offset`, the message's length in UTF-16 code units (JavaScript's
`string.length`) before the token, so a page can merge a snapshot and live tokens without
duplicates or holes. Must not import consumers or views.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

import httpx
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from chatui import fanout, services
from chatui.apps import get_chat_config
from chatui.attachments import chat_message
from chatui.endpoints import DEFAULT_TIMEOUT, EndpointError, StreamResult, stream_generation
from chatui.layers import LAYER_FAILURES
from chatui.models import DEFAULT_TITLE, Conversation, Message
from chatui.prompting import ChatMessage
from chatui.selectors import conversation_detail
from chatui.serializers import message_to_dict
from chatui.titles import generate_title
from chatui.tool_round import tool_round, with_results

logger = logging.getLogger(__name__)

EVENT_TYPE = fanout.EVENT_TYPE
conversation_group = fanout.conversation_group
GENERATION_FAILED = "The answer could not be generated. Try again."
ANSWER_NOT_SAVED = "The answer could not be saved: the database is unreachable."
DB_FAILURES = (OperationalError, InterfaceError)  # the database is away, not the query wrong
FINAL_SAVE_RETRY_S = (0.25, 5.0)  # first and longest wait between tries of the final save
FINAL_SAVE_GIVE_UP_S = 600.0
# From this many answers at once in a process, each answer's tokens go out once per tick.
BATCH_FROM_ANSWERS = 16
BATCH_TICK_S = 0.015
LISTEN_RETRY_S = 0.5  # between receives from an unreachable channel layer


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def endpoint_client() -> httpx.AsyncClient:
    """This event loop's pooled client for model servers. One per answer would cost tens of
    milliseconds of CPU each (its TLS context) and a new connection; a pool limit would queue
    answers, so there is none. `CHATUI_ENDPOINT_TIMEOUT_S` bounds the wait for each token (and
    so the time before an endpoint that hangs is given up for another)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        read = getattr(settings, "CHATUI_ENDPOINT_TIMEOUT_S", None) or DEFAULT_TIMEOUT.read
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(read, connect=min(read, DEFAULT_TIMEOUT.connect)),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )
        _clients[loop] = client
    return client


def generation_group(conversation_id: Any) -> str:
    return f"generation_{conversation_id}"


def utf16_len(text: str) -> int:
    """Length as JavaScript counts it (surrogate pairs count 2)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Generation:
    """A running answer: the text so far lives here between batched saves."""

    conversation_id: str
    message_id: str
    text: str
    prefix: str = field(init=False)  # the text before this run (continue extends it)
    length16: int = field(init=False)  # `utf16_len(text)`, kept up to date token by token
    num_previous_tokens: int = 0  # tokens of `prefix` (continue)
    num_tokens: int = 0
    num_unsaved: int = 0
    last_save: float = 0.0
    save_due: asyncio.Event = field(default_factory=asyncio.Event)
    is_saving: bool = False
    is_finished: bool = False  # the stream ended: the saver stops after what is due
    is_stop_requested: bool = False
    task: asyncio.Task[None] | None = None
    stream_task: asyncio.Task[StreamResult | None] | None = None
    remote: fanout.RemoteQueue = field(init=False)
    tokens: fanout.TokenBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = self.text
        self.length16 = utf16_len(self.text)
        self.remote = fanout.RemoteQueue(self.conversation_id)
        self.tokens = fanout.TokenBatcher(self.emit, self.message_id, BATCH_TICK_S)

    async def emit(self, payload: dict[str, Any]) -> None:
        """An event of this answer to every socket, in order (see `chatui.fanout`)."""
        await fanout.deliver_local(self.conversation_id, payload)
        self.remote.put(payload)

    def request_stop(self) -> None:
        self.is_stop_requested = True
        if self.stream_task is not None:
            self.stream_task.cancel()


# This process's running generations, by conversation id (one at a time per conversation).
registry: dict[str, Generation] = {}
# Message ids of this process's answers until their final save lands (never reaped here).
live_answers: set[str] = set()


@dataclass(frozen=True)
class _Prompt:
    model: Any
    preprompt: str
    messages: list[ChatMessage]
    question: str
    previous_tokens: int
    needs_title: bool


def _build_prompt(request: services.GenerationRequest) -> _Prompt:
    """The path root -> answer as chat messages (the answer itself only when continuing)."""
    answer, continue_message = request.assistant_message, request.continue_message
    conversation = answer.conversation
    path = list(request.path if continue_message else request.path[:-1])
    messages = [
        chat_message(m, request.files)
        for m in path
        if m.role == Message.Role.USER or (m.role == Message.Role.ASSISTANT and m.content)
    ]
    question = next((m.content for m in reversed(path) if m.role == Message.Role.USER), "")
    return _Prompt(
        model=get_chat_config().model(conversation.model),
        preprompt=conversation.system_prompt,
        messages=messages,
        question=question,
        previous_tokens=answer.generated_tokens if continue_message else 0,
        needs_title=conversation.title == DEFAULT_TITLE,
    )


async def generation_start(request: services.GenerationRequest) -> Generation:
    """Announce the new messages and start the answer's task (not tied to any socket)."""
    conversation_id = str(request.conversation_id)
    answer = request.assistant_message
    for message in request.new_messages:
        payload = {"type": "message", "message": message_to_dict(message)}
        await fanout.publish(conversation_id, payload)
    generation = Generation(conversation_id, str(answer.id), text=answer.content)
    registry[conversation_id] = generation
    live_answers.add(generation.message_id)
    # Listening before `queued`: a socket elsewhere asks for the text as soon as it hears it.
    layer = get_channel_layer()
    channel = await layer.new_channel()
    try:
        await layer.group_add(generation_group(conversation_id), channel)
    except LAYER_FAILURES as exc:  # the answer runs; the layer makes the membership later
        logger.warning("Joining %s failed: %s", generation_group(conversation_id), exc)
    await fanout.publish(
        conversation_id, {"type": "status", "message_id": str(answer.id), "status": "queued"}
    )
    # A fresh context: the task must not inherit (and outlive) the caller's sync executor.
    generation.task = asyncio.get_running_loop().create_task(
        _run(generation, channel, request),
        context=contextvars.Context(),
    )
    ensure_reaper()
    return generation


async def generation_stop(*, conversation_id: Any) -> bool:
    """Stop the conversation's answer wherever it runs; True when this process runs it."""
    generation = registry.get(str(conversation_id))
    if generation is not None:
        generation.request_stop()
        return True
    await get_channel_layer().group_send(
        generation_group(conversation_id), {"type": "generation.stop"}
    )
    return False


async def conversation_snapshot(*, conversation: Conversation) -> dict[str, Any]:
    """The conversation with the text generated so far (this process's buffer beats the DB)."""
    stale = await database_sync_to_async(services.message_reap_stale)(
        max_age_s=settings.CHATUI_STALE_AFTER_S,
        conversation_id=conversation.pk,
        exclude_ids=set(live_answers),
    )
    if stale:
        logger.info("Marked %d stale answers as interrupted", len(stale))
    data = await database_sync_to_async(conversation_detail)(conversation=conversation)
    generation = registry.get(str(conversation.pk))
    if generation is not None:
        for message in data["messages"]:
            if message["id"] == generation.message_id:
                message["content"], message["is_generating"] = generation.text, True
        data["is_generating"] = True
    return data


def runs_here(conversation_id: Any) -> bool:
    """Whether this process runs the conversation's answer (its text is live here)."""
    return str(conversation_id) in registry


async def request_sync(*, conversation_id: Any, reply_channel: str) -> None:
    """Ask another process's running task to resend its text to one socket (after a DB
    snapshot, which may lag the live text by one save interval, or when an answer starts
    there); its tokens follow."""
    if str(conversation_id) in registry:
        return
    await get_channel_layer().group_send(
        generation_group(conversation_id),
        {"type": "generation.sync", "reply_channel": reply_channel},
    )


# --- the task --------------------------------------------------------------------------------


async def _run(generation: Generation, channel: str, request: services.GenerationRequest) -> None:
    loop = asyncio.get_running_loop()
    generation.last_save = loop.time()
    generation.remote.start()
    listener = asyncio.create_task(_listen(generation, channel))
    saver = asyncio.create_task(_saver(generation))
    result: StreamResult | None = None
    error = ""
    prompt: _Prompt | None = None
    try:
        prompt = _build_prompt(request)
        generation.num_previous_tokens = prompt.previous_tokens
        if not generation.is_stop_requested:  # a stop may come before the stream starts
            await generation.emit(
                {"type": "status", "message_id": generation.message_id, "status": "generating"}
            )
            if prompt.model.tools and not request.continue_message:
                prompt = await _call_tools(generation, prompt)
            generation.stream_task = asyncio.create_task(
                _stream(generation, prompt, request.continue_message)
            )
            result = await generation.stream_task
    except asyncio.CancelledError:
        if not generation.is_stop_requested:
            raise  # the process is going away: the reaper will mark the answer
    except EndpointError as exc:
        error = getattr(exc, "message", None) or str(exc) or GENERATION_FAILED
    except Exception:
        logger.exception("Generation of message %s failed", generation.message_id)
        error = GENERATION_FAILED
    finally:
        listener.cancel()
        generation.is_finished = True
        if generation.save_due.is_set() or generation.is_saving:
            with contextlib.suppress(Exception):
                await saver  # the batched save that is due still happens, before the final one
        saver.cancel()
        registry.pop(generation.conversation_id, None)
    try:
        message = await _finish(generation, result, error)
    finally:
        live_answers.discard(generation.message_id)
        await generation.remote.close()
    needs_title = prompt is not None and prompt.needs_title and not error
    if message is not None and needs_title and message.content.strip():
        await _title(generation.conversation_id, prompt.question, message.content)


async def _call_tools(generation: Generation, prompt: _Prompt) -> _Prompt:
    """The tool round (chatui.tool_round): calls stored and shown, results in the prompt."""
    records = await tool_round(
        prompt.model, messages=prompt.messages, preprompt=prompt.preprompt, client=endpoint_client()
    )
    if not records:
        return prompt
    await database_sync_to_async(services.message_set_tool_calls)(
        message_id=generation.message_id, tool_calls=records
    )
    await generation.emit(
        {"type": "tool_calls", "message_id": generation.message_id, "tool_calls": records}
    )
    return dataclasses.replace(prompt, messages=with_results(prompt.messages, records))


async def _stream(
    generation: Generation, prompt: _Prompt, continue_message: bool
) -> StreamResult | None:
    loop = asyncio.get_running_loop()
    result: StreamResult | None = None
    stream = stream_generation(
        prompt.model,
        messages=prompt.messages,
        preprompt=prompt.preprompt,
        continue_message=continue_message,
        client=endpoint_client(),
    )
    async with contextlib.aclosing(stream):
        async for item in stream:
            if isinstance(item, StreamResult):
                result = item
                continue
            if item.special or not item.text:
                continue
            offset = generation.length16
            generation.text += item.text
            generation.length16 += utf16_len(item.text)
            generation.num_tokens += 1
            generation.num_unsaved += 1
            await generation.tokens.add(
                item.text, offset, batch=len(registry) >= BATCH_FROM_ANSWERS
            )
            due = loop.time() - generation.last_save >= settings.CHATUI_SAVE_INTERVAL_S
            if due or generation.num_unsaved >= settings.CHATUI_SAVE_EVERY_TOKENS:
                generation.num_unsaved, generation.last_save = 0, loop.time()
                generation.save_due.set()  # saved by `_saver`: tokens never wait for the DB
    return result


async def _save_partial(generation: Generation) -> None:
    """Also the DB check of each save: an answer deleted (or reaped) meanwhile stops."""
    is_saved = await database_sync_to_async(services.message_save_partial)(
        message_id=generation.message_id,
        content=generation.text,
        generated_tokens=generation.num_previous_tokens + generation.num_tokens,
    )
    if not is_saved:
        generation.request_stop()


async def _saver(generation: Generation) -> None:
    """The batched saves `_stream` asks for, one at a time, off the token path; and the
    heartbeat that keeps a slow answer (long prefill, a busy server) from looking dead."""
    loop = asyncio.get_running_loop()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(generation.save_due.wait(), settings.CHATUI_HEARTBEAT_INTERVAL_S)
        generation.save_due.clear()
        generation.last_save = max(generation.last_save, loop.time())
        generation.is_saving = True
        try:
            await _save_partial(generation)
        except DB_FAILURES as exc:  # the next save (or the final one) carries the text
            logger.warning("Saving answer %s failed: %s", generation.message_id, exc)
        finally:
            generation.is_saving = False
        if generation.is_finished and not generation.save_due.is_set():
            return


async def _listen(generation: Generation, channel: str) -> None:
    """Stop and resync requests sent by other processes to `generation_<id>` (`channel` joined
    the group before the answer's first event)."""
    layer = get_channel_layer()
    group = generation_group(generation.conversation_id)
    try:
        while True:
            try:
                event = await layer.receive(channel)
            except LAYER_FAILURES:  # Redis restarts: the layer makes the group again
                await asyncio.sleep(LISTEN_RETRY_S)
                continue
            if event.get("type") == "generation.stop":
                generation.request_stop()
            elif event.get("type") == "generation.sync" and event.get("reply_channel"):
                payload = {
                    "type": "token",
                    "message_id": generation.message_id,
                    "token": generation.text,
                    "offset": 0,
                }
                generation.remote.put_reply(event["reply_channel"], payload)
    finally:
        await asyncio.shield(fanout.leave(group, channel))


async def _finish(
    generation: Generation, result: StreamResult | None, error: str
) -> Message | None:
    """Store the answer as it ended and tell every socket (None: deleted meanwhile)."""
    is_stopped = generation.is_stop_requested and not error
    text, finish_reason, generated = generation.text, "", generation.num_tokens
    interrupted = is_stopped or bool(error)
    if result is not None and not is_stopped and not error:
        # The endpoint's final text (a trailing stop string stripped) replaces the streamed one.
        if result.text is not None:
            text = generation.prefix + result.text
        finish_reason = result.finish_reason or ""
        interrupted = bool(result.interrupted)
        generated = result.generated_tokens or generated
    elif result is None and not is_stopped and not error:
        interrupted = True  # the stream ended without its final event
    try:
        message = await _store_final(
            message_id=generation.message_id,
            content=text,
            finish_reason=finish_reason,
            interrupted=interrupted,
            error=error,
            generated_tokens=generation.num_previous_tokens + generated,
        )
    except DB_FAILURES:
        logger.exception("The answer %s was not saved", generation.message_id)
        message_id = generation.message_id
        await generation.tokens.flush()
        error_event = {"type": "error", "message": ANSWER_NOT_SAVED, "message_id": message_id}
        await generation.emit(error_event)
        await generation.emit({"type": "status", "message_id": message_id, "status": "done"})
        return None
    if message is None:
        return None
    await generation.tokens.flush()
    await generation.emit({"type": "final", "message": message_to_dict(message)})
    status = "stopped" if is_stopped else "done"
    await generation.emit({"type": "status", "message_id": generation.message_id, "status": status})
    if error:
        await generation.emit(
            {"type": "error", "message": error, "message_id": generation.message_id}
        )
    return message


async def _store_final(**fields: Any) -> Message | None:
    """`services.message_finish`, tried again while the database is unreachable (for up to
    FINAL_SAVE_GIVE_UP_S: then the DB failure is raised)."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + FINAL_SAVE_GIVE_UP_S
    wait, longest = FINAL_SAVE_RETRY_S
    while True:
        try:
            return await database_sync_to_async(services.message_finish)(**fields)
        except DB_FAILURES as exc:
            if loop.time() + wait > give_up_at:
                raise
            logger.warning("Saving answer %s failed, retrying: %s", fields["message_id"], exc)
        await asyncio.sleep(wait)
        wait = min(wait * 2, longest)


async def _title(conversation_id: str, question: str, answer: str) -> None:
    try:
        title = await generate_title(
            get_chat_config(), user_message=question, answer=answer, client=endpoint_client()
        )
    except Exception:
        logger.exception("Title generation failed for conversation %s", conversation_id)
        return
    stored = await database_sync_to_async(services.conversation_set_title)(
        conversation_id=conversation_id, title=title
    )
    if stored:
        await fanout.publish(
            conversation_id,
            {"type": "title", "conversation_id": conversation_id, "title": stored},
        )


# --- the reaper ------------------------------------------------------------------------------

_reapers: dict[int, asyncio.Task[None]] = {}


def with_reaper(app: Any) -> Any:
    """ASGI middleware: the first request or socket starts this process's reaper (daphne
    sends no lifespan startup event)."""

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket"):
            ensure_reaper()
        return await app(scope, receive, send)

    return application


def ensure_reaper() -> None:
    """Start this event loop's reaper once (at the first socket or generation)."""
    loop = asyncio.get_running_loop()
    task = _reapers.get(id(loop))
    if task is None or task.done() or task.get_loop() is not loop:
        _reapers[id(loop)] = loop.create_task(_reap_forever(), context=contextvars.Context())


async def reap_stale() -> list[Message]:
    """Answers whose process stopped sending heartbeats become interrupted (and pages hear)."""
    reaped = await database_sync_to_async(services.message_reap_stale)(
        max_age_s=settings.CHATUI_STALE_AFTER_S, exclude_ids=set(live_answers)
    )
    for message in reaped:
        await fanout.publish(
            message.conversation_id, {"type": "final", "message": message_to_dict(message)}
        )
    return reaped


async def _reap_forever() -> None:
    while True:
        try:
            reaped = await reap_stale()
            if reaped:
                logger.info("Marked %d stale answers as interrupted", len(reaped))
        except Exception:
            logger.exception("Reaping stale answers failed")
        await asyncio.sleep(settings.CHATUI_STALE_AFTER_S / 2)
