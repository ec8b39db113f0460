"""What a running answer writes to the database, off the token path: the batched saves of its
text (which double as the heartbeat a reaper reads), the final save (tried again while the
database is away), the final events that follow it, and the conversation's generated title.

The database may go away for a while: a batched save or heartbeat that fails is carried by
the next, and the final save is retried until it lands (the pages have every token
meanwhile) or FINAL_SAVE_GIVE_UP_S has passed.

Below `chatui.streaming.answer` (which runs these): must not import it (what it needs of an
answer is the `SavedAnswer` protocol below), nor `chatui.streaming.socket`, consumers or views.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError

from chatui import services
from chatui.chat_config import get_chat_config
from chatui.endpoints import StreamResult
from chatui.models import Message
from chatui.serializers import message_to_dict
from chatui.streaming import publish
from chatui.streaming.hub import get_hub
from chatui.titles import generate_title

logger = logging.getLogger(__name__)

ANSWER_NOT_SAVED = "The answer could not be saved: the database is unreachable."
DB_FAILURES = (OperationalError, InterfaceError)  # the database is away, not the query wrong
FINAL_SAVE_RETRY_S = (0.25, 5.0)  # first and longest wait between tries of the final save
FINAL_SAVE_GIVE_UP_S = 600.0


class SavedAnswer(Protocol):
    """What the saver reads and marks of a running answer (`chatui.streaming.answer.Answer`)."""

    message_id: str
    text: str
    prefix: str  # the text before this run (continue extends it)
    num_previous_tokens: int
    num_tokens: int
    last_save: float
    save_due: asyncio.Event  # set by the token loop when a batched save is due
    is_saving: bool
    is_finished: bool
    is_stop_requested: bool
    tokens: publish.TokenBatcher

    async def emit(self, payload: dict[str, Any]) -> None: ...

    def request_stop(self) -> None: ...


async def save_partial(answer: SavedAnswer) -> None:
    """Also the DB check of each save: an answer deleted (or reaped) meanwhile stops."""
    is_saved = await database_sync_to_async(services.message_save_partial)(
        message_id=answer.message_id,
        content=answer.text,
        generated_tokens=answer.num_previous_tokens + answer.num_tokens,
    )
    if not is_saved:
        answer.request_stop()


async def run_saver(answer: SavedAnswer) -> None:
    """The batched saves the token loop asks for, one at a time, off the token path; and the
    heartbeat that keeps a slow answer (long prefill, a busy server) from looking dead."""
    loop = asyncio.get_running_loop()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answer.save_due.wait(), settings.CHATUI_HEARTBEAT_INTERVAL_S)
        answer.save_due.clear()
        answer.last_save = max(answer.last_save, loop.time())
        answer.is_saving = True
        try:
            await save_partial(answer)
        except DB_FAILURES as exc:  # the next save (or the final one) carries the text
            logger.warning("Saving answer %s failed: %s", answer.message_id, exc)
        finally:
            answer.is_saving = False
        if answer.is_finished and not answer.save_due.is_set():
            return


async def finish(answer: SavedAnswer, result: StreamResult | None, error: str) -> Message | None:
    """Store the answer as it ended and tell every socket (None: deleted meanwhile)."""
    is_stopped = answer.is_stop_requested and not error
    text, finish_reason, generated = answer.text, "", answer.num_tokens
    interrupted = is_stopped or bool(error)
    if result is not None and not is_stopped and not error:
        # The endpoint's final text (a trailing stop string stripped) replaces the streamed one.
        if result.text is not None:
            text = answer.prefix + result.text
        finish_reason = result.finish_reason or ""
        interrupted = bool(result.interrupted)
        generated = result.generated_tokens or generated
    elif result is None and not is_stopped and not error:
        interrupted = True  # the stream ended without its final event
    try:
        message = await store_final(
            message_id=answer.message_id,
            content=text,
            finish_reason=finish_reason,
            interrupted=interrupted,
            error=error,
            generated_tokens=answer.num_previous_tokens + generated,
            prompt_tokens=result.prompt_tokens if result is not None else None,
        )
    except DB_FAILURES:
        logger.exception("The answer %s was not saved", answer.message_id)
        message_id = answer.message_id
        await answer.tokens.flush()
        error_event = {"type": "error", "message": ANSWER_NOT_SAVED, "message_id": message_id}
        await answer.emit(error_event)
        await answer.emit({"type": "status", "message_id": message_id, "status": "done"})
        return None
    if message is None:
        return None
    await answer.tokens.flush()
    await answer.emit({"type": "final", "message": message_to_dict(message)})
    status = "stopped" if is_stopped else "done"
    await answer.emit({"type": "status", "message_id": answer.message_id, "status": status})
    if error:
        await answer.emit({"type": "error", "message": error, "message_id": answer.message_id})
    return message


async def store_final(**fields: Any) -> Message | None:
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


async def save_title(conversation_id: str, first_message: str) -> None:
    """The generated title, stored and announced unless the user renamed the conversation."""
    try:
        hub = get_hub()
        title = await generate_title(
            get_chat_config(),
            user_message=first_message,
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
        await publish.publish(
            conversation_id,
            {"type": "title", "conversation_id": conversation_id, "title": stored},
        )
