"""The reaper: answers whose process died (no heartbeat for `CHATUI_STALE_AFTER_S`) become
interrupted, and the pages open on them hear it. One per event loop, started by the first
request or socket (`with_reaper`, the ASGI middleware `config.asgi` wraps the app in: daphne
sends no lifespan startup event) or the first answer.

This process's reaper never marks its own running answers (`Hub.unsaved`): their heartbeats
may have failed while the database was away.

Must not import `chatui.streaming.answer` (which imports this), `chatui.streaming.socket`,
consumers or views.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chatui import services
from chatui.models import Message
from chatui.serializers import message_to_dict
from chatui.streaming import publish
from chatui.streaming.hub import get_hub

logger = logging.getLogger(__name__)


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
        await publish.publish(
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
