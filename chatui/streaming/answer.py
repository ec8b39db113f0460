"""An answer as a server task: one asyncio task per generating conversation, owned by the
process (its `Hub`).

An answer outlives the websocket that asked for it (closing the tab does not stop it).
It streams from `chatui.endpoints.stream_generation`, fans every event out to the
conversation's sockets (`chatui.streaming.bus`: this process's directly, other processes'
through the Channels group `conversation_<id>`), saves the text in batches off the token path (every
`CHATUI_SAVE_INTERVAL_S` or `CHATUI_SAVE_EVERY_TOKENS` tokens, whichever comes first) and
once complete, and keeps a heartbeat on the message so that a reaper in any process can mark
answers of a dead process as interrupted.

Stop and resync requests reach the task directly through this process's hub, or through
the channel layer group `generation_<id>` that each task listens on from before its first
event (another process, e.g. behind Redis).

The database may go away for a while: the batched saves and heartbeats that fail are retried
by the next, the final save is retried until it lands (the pages have every token meanwhile),
and this process's reaper never marks its own running answers (whose heartbeats it missed).

Tokens carry `offset` (see `chatui.streaming.bus`), so a page can merge a snapshot and live
tokens without duplicates or holes. Must not import consumers or views.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from chatui import services
from chatui.attachments import chat_message
from chatui.chat_config import get_chat_config
from chatui.endpoints import EndpointError, StreamResult, stream_generation
from chatui.layers import LAYER_FAILURES, raise_if_cancelled
from chatui.models import DEFAULT_TITLE, Conversation, Message
from chatui.prompting import ChatMessage
from chatui.selectors import conversation_detail
from chatui.serializers import message_to_dict
from chatui.streaming import bus
from chatui.streaming.bus import generation_group, utf16_len
from chatui.streaming.hub import get_hub
from chatui.titles import generate_title
from chatui.tool_round import tool_round, with_results

logger = logging.getLogger(__name__)

GENERATION_FAILED = "The answer could not be generated. Try again."
ANSWER_NOT_SAVED = "The answer could not be saved: the database is unreachable."
DB_FAILURES = (OperationalError, InterfaceError)  # the database is away, not the query wrong
FINAL_SAVE_RETRY_S = (0.25, 5.0)  # first and longest wait between tries of the final save
FINAL_SAVE_GIVE_UP_S = 600.0
# From this many answers at once in a process, each answer's tokens go out once per tick.
BATCH_FROM_ANSWERS = 16
BATCH_TICK_S = 0.015
LISTEN_RETRY_S = 0.5  # between receives from an unreachable channel layer
LISTENER_END_WAIT_S = 2.0


@dataclass
class Answer:
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
    remote: bus.RemoteQueue = field(init=False)
    tokens: bus.TokenBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = self.text
        self.length16 = utf16_len(self.text)
        self.remote = bus.RemoteQueue(self.conversation_id)
        self.tokens = bus.TokenBatcher(self.emit, self.message_id, BATCH_TICK_S)

    async def emit(self, payload: dict[str, Any]) -> None:
        """An event of this answer to every socket, in order (see `chatui.streaming.bus`)."""
        await bus.deliver_local(self.conversation_id, payload)
        self.remote.put(payload)

    def request_stop(self) -> None:
        self.is_stop_requested = True
        if self.stream_task is not None:
            self.stream_task.cancel()


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


async def generation_start(request: services.GenerationRequest) -> Answer:
    """Announce the new messages and start the answer's task (not tied to any socket)."""
    conversation_id = str(request.conversation_id)
    answer = request.assistant_message
    for message in request.new_messages:
        payload = {"type": "message", "message": message_to_dict(message)}
        await bus.publish(conversation_id, payload)
    generation = Answer(conversation_id, str(answer.id), text=answer.content)
    hub = get_hub()
    hub.answers[conversation_id] = generation
    hub.unsaved.add(generation.message_id)
    # Listening before `queued`: a socket elsewhere asks for the text as soon as it hears it.
    layer = get_channel_layer()
    channel = await layer.new_channel()
    try:
        await layer.group_add(generation_group(conversation_id), channel)
    except LAYER_FAILURES as exc:  # the answer runs; the layer makes the membership later
        raise_if_cancelled(exc)
        logger.warning("Joining %s failed: %s", generation_group(conversation_id), exc)
    await bus.publish(
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
    generation = get_hub().answers.get(str(conversation_id))
    if generation is not None:
        generation.request_stop()
        return True
    await bus.request_stop(conversation_id)
    return False


async def conversation_snapshot(*, conversation: Conversation) -> dict[str, Any]:
    """The conversation with the text generated so far (this process's buffer beats the DB)."""
    stale = await database_sync_to_async(services.message_reap_stale)(
        max_age_s=settings.CHATUI_STALE_AFTER_S,
        conversation_id=conversation.pk,
        exclude_ids=set(get_hub().unsaved),
    )
    if stale:
        logger.info("Marked %d stale answers as interrupted", len(stale))
    data = await database_sync_to_async(conversation_detail)(conversation=conversation)
    generation = get_hub().answers.get(str(conversation.pk))
    if generation is not None:
        for message in data["messages"]:
            if message["id"] == generation.message_id:
                message["content"], message["is_generating"] = generation.text, True
        data["is_generating"] = True
    return data


# --- the task --------------------------------------------------------------------------------


async def _run(generation: Answer, channel: str, request: services.GenerationRequest) -> None:
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
        get_hub().answers.pop(generation.conversation_id, None)
    try:
        message = await _finish(generation, result, error)
    finally:
        get_hub().unsaved.discard(generation.message_id)
        await generation.remote.close()
        # The answer ends once its listener has left the group (bounded: a layer may be slow
        # to notice a cancelled read).
        await asyncio.wait({listener}, timeout=LISTENER_END_WAIT_S)
    needs_title = prompt is not None and prompt.needs_title and not error
    if message is not None and needs_title and message.content.strip():
        await _title(generation.conversation_id, prompt.question, message.content)


async def _call_tools(generation: Answer, prompt: _Prompt) -> _Prompt:
    """The tool round (chatui.tool_round): calls stored and shown, results in the prompt."""
    hub = get_hub()
    records = await tool_round(
        prompt.model,
        messages=prompt.messages,
        preprompt=prompt.preprompt,
        client=hub.client(),
        state=hub.endpoints,
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
    generation: Answer, prompt: _Prompt, continue_message: bool
) -> StreamResult | None:
    loop = asyncio.get_running_loop()
    result: StreamResult | None = None
    stream = stream_generation(
        prompt.model,
        messages=prompt.messages,
        preprompt=prompt.preprompt,
        continue_message=continue_message,
        client=get_hub().client(),
        state=get_hub().endpoints,
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
                item.text, offset, batch=len(get_hub().answers) >= BATCH_FROM_ANSWERS
            )
            due = loop.time() - generation.last_save >= settings.CHATUI_SAVE_INTERVAL_S
            if due or generation.num_unsaved >= settings.CHATUI_SAVE_EVERY_TOKENS:
                generation.num_unsaved, generation.last_save = 0, loop.time()
                generation.save_due.set()  # saved by `_saver`: tokens never wait for the DB
    return result


async def _save_partial(generation: Answer) -> None:
    """Also the DB check of each save: an answer deleted (or reaped) meanwhile stops."""
    is_saved = await database_sync_to_async(services.message_save_partial)(
        message_id=generation.message_id,
        content=generation.text,
        generated_tokens=generation.num_previous_tokens + generation.num_tokens,
    )
    if not is_saved:
        generation.request_stop()


async def _saver(generation: Answer) -> None:
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


async def _listen(generation: Answer, channel: str) -> None:
    """Stop and resync requests sent by other processes to `generation_<id>` (`channel` joined
    the group before the answer's first event)."""
    layer = get_channel_layer()
    group = generation_group(generation.conversation_id)
    try:
        while True:
            try:
                event = await layer.receive(channel)
            except LAYER_FAILURES as exc:  # Redis restarts: the layer makes the group again
                raise_if_cancelled(exc)
                await asyncio.sleep(LISTEN_RETRY_S)
                continue
            if event.get("type") == bus.STOP_TYPE:
                generation.request_stop()
            elif event.get("type") == bus.SYNC_TYPE and event.get("reply_channel"):
                payload = {
                    "type": "token",
                    "message_id": generation.message_id,
                    "token": generation.text,
                    "offset": 0,
                }
                generation.remote.put_reply(event["reply_channel"], payload)
    finally:
        await asyncio.shield(bus.leave(group, channel))


async def _finish(generation: Answer, result: StreamResult | None, error: str) -> Message | None:
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
            prompt_tokens=result.prompt_tokens if result is not None else None,
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
        hub = get_hub()
        title = await generate_title(
            get_chat_config(),
            user_message=question,
            answer=answer,
            client=hub.client(),
            state=hub.endpoints,
        )
    except Exception:
        logger.exception("Title generation failed for conversation %s", conversation_id)
        return
    stored = await database_sync_to_async(services.conversation_set_title)(
        conversation_id=conversation_id, title=title
    )
    if stored:
        await bus.publish(
            conversation_id,
            {"type": "title", "conversation_id": conversation_id, "title": stored},
        )


# --- the reaper ------------------------------------------------------------------------------


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
    reapers = get_hub().reapers
    task = reapers.get(id(loop))
    if task is None or task.done() or task.get_loop() is not loop:
        reapers[id(loop)] = loop.create_task(_reap_forever(), context=contextvars.Context())


async def reap_stale() -> list[Message]:
    """Answers whose process stopped sending heartbeats become interrupted (and pages hear)."""
    reaped = await database_sync_to_async(services.message_reap_stale)(
        max_age_s=settings.CHATUI_STALE_AFTER_S, exclude_ids=set(get_hub().unsaved)
    )
    for message in reaped:
        await bus.publish(
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
