"""An answer as a server task: one asyncio task per generating conversation, owned by the
process (its `Hub`): the answer's state, the tool loop or the token loop, and the listener for
requests from other processes.

An answer outlives the websocket that asked for it (closing the tab does not stop it).
It streams from `chatui.endpoints.stream_generation`, fans every event out to the
conversation's sockets (`chatui.streaming.publish`: this process's directly, other processes'
through the Channels group `conversation_<id>`), has its text saved in batches off the token
path (every `CHATUI_SAVE_INTERVAL_S` or `CHATUI_SAVE_EVERY_TOKENS` tokens, whichever comes
first) and once complete, with a heartbeat between (`chatui.streaming.saver`), so that a
reaper in any process (`chatui.streaming.reaper`) can mark answers of a dead process as
interrupted.

Stop and resync requests reach the task directly through this process's hub, or through
the channel layer group `generation_<id>` that each task listens on from before its first
event (another process, e.g. behind Redis).

Tokens carry `offset` (see `chatui.streaming.publish`), so a page can merge a snapshot and live
tokens without duplicates or holes.

The top of the streaming package beside `chatui.streaming.socket`: must not import the socket,
consumers or views.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from chatui import metrics, services
from chatui.chat_config import get_chat_config
from chatui.endpoints import EndpointError, StreamResult, generate_text, stream_generation
from chatui.layers import LAYER_FAILURES, raise_if_cancelled
from chatui.models import Conversation
from chatui.prompt_assembly import AnswerPrompt, answer_prompt, fit_to_context
from chatui.reasoning import (
    SUMMARY_MAX_TOKENS,
    ReasoningStream,
    split_reasoning,
    summary_messages,
)
from chatui.selectors import conversation_detail
from chatui.serializers import message_to_dict
from chatui.streaming import publish
from chatui.streaming.hub import get_hub
from chatui.streaming.publish import generation_group, utf16_len
from chatui.streaming.reaper import ensure_reaper
from chatui.streaming.saver import finish, run_saver, save_title
from chatui.streaming.tool_answer import stream_with_tools
from chatui.tools.catalog import OfferedTool
from chatui.tools.history import as_text
from chatui.tools.mcp_servers import McpServer, user_servers
from chatui.tools.setup import get_catalog

logger = logging.getLogger(__name__)

GENERATION_FAILED = "The answer could not be generated. Try again."
# From this many answers at once in a process, each answer's tokens go out once per tick.
BATCH_FROM_ANSWERS = 16
BATCH_TICK_S = 0.015
LISTEN_RETRY_S = 0.5  # between receives from an unreachable channel layer
LISTENER_END_WAIT_S = 2.0
NO_TOOL_SUPPORT = frozenset({400, 404, 405, 422})  # statuses of a server that has no tools


@dataclass
class Answer:
    """A running answer: the text so far lives here between batched saves."""

    conversation_id: str
    message_id: str
    text: str
    prefix: str = field(init=False)  # the text before this run (continue extends it)
    length16: int = field(init=False)  # `utf16_len(text)`, kept up to date token by token
    num_previous_tokens: int = 0  # tokens of `prefix` (continue)
    started_at: float = field(default_factory=time.monotonic)  # for the time to first token
    num_tokens: int = 0
    num_unsaved: int = 0
    last_save: float = 0.0
    save_due: asyncio.Event = field(default_factory=asyncio.Event)
    is_saving: bool = False
    is_finished: bool = False  # the stream ended: the saver stops after what is due
    is_stop_requested: bool = False
    running_tools: list[dict[str, Any]] = field(default_factory=list)  # calls under way
    task: asyncio.Task[None] | None = None
    stream_task: asyncio.Task[StreamResult | None] | None = None
    remote: publish.RemoteQueue = field(init=False)
    tokens: publish.TokenBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = self.text
        self.length16 = utf16_len(self.text)
        self.remote = publish.RemoteQueue(self.conversation_id)
        self.tokens = publish.TokenBatcher(self.emit, self.message_id, BATCH_TICK_S)

    async def emit(self, payload: dict[str, Any]) -> None:
        """An event of this answer to every socket, in order (see `chatui.streaming.publish`)."""
        await publish.deliver_local(self.conversation_id, payload)
        self.remote.put(payload)

    def request_stop(self) -> None:
        self.is_stop_requested = True
        if self.stream_task is not None:
            self.stream_task.cancel()


async def generation_start(request: services.GenerationRequest) -> Answer:
    """Announce the new messages and start the answer's task (not tied to any socket)."""
    conversation_id = str(request.conversation_id)
    answer = request.assistant_message
    for message in request.new_messages:
        payload = {"type": "message", "message": message_to_dict(message)}
        await publish.publish(conversation_id, payload)
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
    await publish.publish(
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
    await publish.request_stop(conversation_id)
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
                message["running_tools"] = list(generation.running_tools)
        data["is_generating"] = True
    return data


# --- the task --------------------------------------------------------------------------------


async def _run(generation: Answer, channel: str, request: services.GenerationRequest) -> None:
    loop = asyncio.get_running_loop()
    generation.last_save = loop.time()
    generation.remote.start()
    listener = asyncio.create_task(listen(generation, channel))
    saver = asyncio.create_task(run_saver(generation))
    result: StreamResult | None = None
    error = ""
    prompt: AnswerPrompt | None = None
    titling: asyncio.Task[None] | None = None
    try:
        prompt = answer_prompt(request)
        generation.num_previous_tokens = prompt.previous_tokens
        if prompt.needs_title:  # alongside the answer, as chat-ui does: it shows while it streams
            titling = asyncio.create_task(
                save_title(generation.conversation_id, prompt.title_source)
            )
        if not generation.is_stop_requested:  # a stop may come before the stream starts
            await generation.emit(
                {"type": "status", "message_id": generation.message_id, "status": "generating"}
            )
            prompt, notice = fit_to_context(prompt)
            if notice:
                await generation.emit(
                    {"type": "notice", "message_id": generation.message_id, "message": notice}
                )
            generation.stream_task = asyncio.create_task(_answer(generation, prompt, request))
            result = await generation.stream_task
    except asyncio.CancelledError:
        if not generation.is_stop_requested:
            if titling is not None:
                titling.cancel()
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
        await finish(generation, result, error)
    finally:
        get_hub().unsaved.discard(generation.message_id)
        await generation.remote.close()
        # The answer ends once its listener has left the group (bounded: a layer may be slow
        # to notice a cancelled read).
        await asyncio.wait({listener}, timeout=LISTENER_END_WAIT_S)
        if titling is not None:
            await titling


async def _tools_for(
    prompt: AnswerPrompt, request: services.GenerationRequest, servers: tuple[McpServer, ...]
) -> list[OfferedTool]:
    """The tools this answer is offered: none unless the model has tools and the
    conversation's switch is on (a continued answer goes on without new calls)."""
    if not (prompt.model.tools and request.use_tools) or request.continue_message:
        return []
    return await get_catalog().offered(
        user_servers=servers, disabled=request.tool_settings.get("disabled") or ()
    )


async def _answer(
    generation: Answer, prompt: AnswerPrompt, request: services.GenerationRequest
) -> StreamResult | None:
    """The answer's stream: the tool loop when tools are offered, else one generation (with
    earlier tool results written into the prompt)."""
    servers = user_servers(request.tool_settings.get("servers"))
    tools = await _tools_for(prompt, request, servers)
    if tools:

        async def add_text(text: str) -> None:
            await _add_text(generation, prompt, text)

        try:
            return await stream_with_tools(generation, prompt, tools, add_text, servers)
        except EndpointError as exc:
            # A server without tool calling (no chat route, tools refused) before any output:
            # the answer is written without tools, as for a model that has none.
            if generation.num_tokens or exc.status not in NO_TOOL_SUPPORT:
                raise
            logger.warning("Tools refused by %s, answering without: %s", prompt.model.id, exc)
    prompt = dataclasses.replace(prompt, messages=as_text(prompt.messages))
    return await _stream(generation, prompt, request.continue_message)


async def _stream(
    generation: Answer, prompt: AnswerPrompt, continue_message: bool
) -> StreamResult | None:
    result: StreamResult | None = None
    stream = stream_generation(
        prompt.model,
        messages=prompt.messages,
        preprompt=prompt.preprompt,
        continue_message=continue_message,
        client=get_hub().client(),
        state=get_hub().endpoints,
    )
    thoughts = ReasoningStream(prompt.model.reasoning, prefix=generation.prefix)
    async with contextlib.aclosing(stream):
        async for item in stream:
            if isinstance(item, StreamResult):
                result = item
                continue
            if item.special or not item.text:
                continue
            await _add_text(generation, prompt, thoughts.feed(item.text))
    await _append_text(generation, thoughts.close())
    if result is not None:
        result = dataclasses.replace(result, text=thoughts.final_text(result.text))
        if thoughts.needs_summary:
            result = await _summarize(generation, prompt, result)
    return result


async def _add_text(generation: Answer, prompt: AnswerPrompt, text: str) -> None:
    """One piece from the model (counted, and timed when first), then its text if any."""
    if generation.num_tokens == 0:
        metrics.first_token(prompt.model.id, time.monotonic() - generation.started_at)
    generation.num_tokens += 1
    await _append_text(generation, text)


async def _append_text(generation: Answer, text: str) -> None:
    """Text of the answer to its sockets, and a batched save when one is due."""
    if not text:
        return
    loop = asyncio.get_running_loop()
    offset = generation.length16
    generation.text += text
    generation.length16 += utf16_len(text)
    generation.num_unsaved += 1
    await generation.tokens.add(text, offset, batch=len(get_hub().answers) >= BATCH_FROM_ANSWERS)
    due = loop.time() - generation.last_save >= settings.CHATUI_SAVE_INTERVAL_S
    if due or generation.num_unsaved >= settings.CHATUI_SAVE_EVERY_TOKENS:
        generation.num_unsaved, generation.last_save = 0, loop.time()
        generation.save_due.set()  # saved by `run_saver`: tokens never wait for the DB


async def _summarize(
    generation: Answer, prompt: AnswerPrompt, result: StreamResult
) -> StreamResult:
    """A ``summarize`` model's answer: the task model's summary of its reasoning (none when
    the task model fails: the reasoning is still there to read)."""
    reasoning, _ = split_reasoning(result.text)
    hub = get_hub()
    try:
        summary = await generate_text(
            get_chat_config().task_model,
            summary_messages(prompt.question, reasoning or ""),
            SUMMARY_MAX_TOKENS,
            client=hub.client(),
            state=hub.endpoints,
        )
    except EndpointError as exc:
        logger.warning("Summarizing the reasoning of %s failed: %s", generation.message_id, exc)
        return result
    await _append_text(generation, summary)
    return dataclasses.replace(result, text=result.text + summary)


async def listen(generation: Answer, channel: str) -> None:
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
            if event.get("type") == publish.STOP_TYPE:
                generation.request_stop()
            elif event.get("type") == publish.SYNC_TYPE and event.get("reply_channel"):
                payload = {
                    "type": "token",
                    "message_id": generation.message_id,
                    "token": generation.text,
                    "offset": 0,
                }
                generation.remote.put_reply(event["reply_channel"], payload)
    finally:
        await asyncio.shield(publish.leave(group, channel))
