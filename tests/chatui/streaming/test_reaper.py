"""`chatui.streaming.reaper`: answers of a dead process become interrupted, at a socket's
snapshot and by the reaper that the first request starts (`with_reaper`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from chatui.models import Conversation, Message
from chatui.streaming.reaper import with_reaper
from tests.chatui.helpers import connect, db, send_and_finish, setup_owner, wait_idle

pytestmark = pytest.mark.django_db(transaction=True)


async def test_stale_answers_of_a_dead_process_are_marked_interrupted(endpoints):
    owner, cid = await setup_owner()

    def orphan() -> str:
        conversation = Conversation.objects.get(pk=cid)
        question = Message.objects.create(conversation=conversation, role="user", content="Q")
        answer = Message.objects.create(
            conversation=conversation,
            parent=question,
            role="assistant",
            content="partial",
            is_generating=True,
            heartbeat_at=timezone.now() - timedelta(minutes=5),
        )
        return str(answer.id)

    answer_id = await db(orphan)()
    socket = await connect(owner, cid)
    answer = socket.snapshot["messages"][-1]
    assert answer["id"] == answer_id
    assert (answer["is_generating"], answer["interrupted"], answer["content"]) == (
        False,
        True,
        "partial",
    )
    # The conversation accepts new messages again.
    events = await send_and_finish(socket, "again", parent_id=answer_id)
    assert events[-1]["message"]["content"] == "Hello, world!"
    await wait_idle(cid)
    await socket.disconnect()


async def test_the_first_request_starts_the_reaper(endpoints, settings):
    settings.CHATUI_STALE_AFTER_S = 0.5
    _, cid = await setup_owner()

    def orphan() -> str:
        conversation = Conversation.objects.get(pk=cid)
        return str(
            Message.objects.create(
                conversation=conversation,
                role="assistant",
                content="cut",
                is_generating=True,
                heartbeat_at=timezone.now() - timedelta(seconds=5),
            ).id
        )

    answer_id = await db(orphan)()
    seen: list[str] = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await with_reaper(app)({"type": "http"}, None, None)
    assert seen == ["http"]
    for _ in range(200):
        answer = await db(Message.objects.get)(pk=answer_id)
        if not answer.is_generating:
            break
        await asyncio.sleep(0.05)
    assert (answer.is_generating, answer.interrupted, answer.content) == (False, True, "cut")
