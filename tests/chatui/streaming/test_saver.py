"""`chatui.streaming.saver`: batched saves (by tokens and by time), their cost in writes, an
answer deleted meanwhile, and the final save tried again while the database is away."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import OperationalError, connections
from django.db.backends.utils import CursorWrapper

from chatui import services
from chatui.models import Conversation, Message
from chatui.selectors import CONVERSATION_NOT_FOUND
from chatui.streaming import saver
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import (
    TIMEOUT,
    connect,
    db,
    receive_until,
    send_and_finish,
    setup_owner,
    start_answer,
    title_event,
    wait_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def update_statements():
    """Every UPDATE the database receives, from any thread."""
    statements: list[str] = []
    original = CursorWrapper.execute

    def execute(self, sql, params=None):
        if sql.lstrip().upper().startswith("UPDATE"):
            statements.append(sql)
        return original(self, sql, params)

    CursorWrapper.execute = execute
    yield statements
    CursorWrapper.execute = original
    connections.close_all()


async def test_an_answer_costs_few_database_writes(endpoints, settings, update_statements):
    settings.CHATUI_SAVE_INTERVAL_S = 3600  # count only the token-batched saves here
    num_tokens = 100
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(num_tokens)]))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    update_statements.clear()
    events = await send_and_finish(socket, "Count to 100")
    await title_event(socket, events)
    await wait_idle(cid)
    assert events[-1]["message"]["content"] == " ".join(f"t{i}" for i in range(num_tokens))
    partial_saves = num_tokens // 32
    assert 1 + partial_saves <= len(update_statements) <= 3 + partial_saves, update_statements
    await socket.disconnect()


async def test_slow_answers_are_saved_every_interval_while_streaming(endpoints, settings):
    settings.CHATUI_SAVE_EVERY_TOKENS = 1000  # only the time rule can save here
    _, cid, socket = await start_answer(endpoints, "slow", [f"s{i} " for i in range(12)], delay=0.1)
    for _ in range(6):  # 0.6 s of tokens: more than two save intervals
        events = await receive_until(socket, "token")
    answer_id = events[-1]["message_id"]
    stored = await db(Message.objects.get)(pk=answer_id)
    assert stored.is_generating is True
    assert stored.content.startswith("s0 ") and stored.generated_tokens >= 1
    final = (await receive_until(socket, "final"))[-1]["message"]
    assert final["content"].startswith(stored.content)
    await wait_idle(cid)
    await socket.disconnect()


async def test_deleting_the_conversation_stops_its_answer(endpoints):
    _, cid, socket = await start_answer(
        endpoints, "long", [f"t{i} " for i in range(200)], delay=0.05
    )
    await receive_until(socket, "token")
    conversation = await db(Conversation.objects.get)(pk=cid)
    await db(services.conversation_delete)(conversation=conversation)
    assert await asyncio.to_thread(endpoints.tgi.disconnected.wait, TIMEOUT)
    await wait_idle(cid)
    assert not await db(Message.objects.filter(conversation_id=cid).exists)()
    await socket.send_json_to({"type": "send", "content": "again", "parent_id": None})
    error = (await receive_until(socket, "error"))[-1]
    assert error["message"] == CONVERSATION_NOT_FOUND
    await socket.disconnect()


@dataclass
class FakeAnswer:
    """What `saver` reads of a running answer (`saver.SavedAnswer`)."""

    message_id: str = "m1"
    text: str = ""
    prefix: str = ""
    num_previous_tokens: int = 0
    num_tokens: int = 0
    last_save: float = 0.0
    save_due: asyncio.Event = field(default_factory=asyncio.Event)
    is_saving: bool = False
    is_finished: bool = False
    is_stop_requested: bool = False
    tokens: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)

    async def emit(self, payload: dict[str, Any]) -> None:
        self.events.append(payload)

    def request_stop(self) -> None:
        self.is_stop_requested = True


async def test_a_failed_batched_save_is_carried_by_the_next(monkeypatch):
    calls: list[dict[str, Any]] = []

    def message_save_partial(**fields: Any) -> bool:
        calls.append(fields)
        if len(calls) == 1:
            raise OperationalError("the database is away")
        return False  # the answer was deleted meanwhile

    monkeypatch.setattr(services, "message_save_partial", message_save_partial)
    answer = FakeAnswer(text="a", num_tokens=1)
    answer.save_due.set()
    task = asyncio.create_task(saver.run_saver(answer))
    while not calls:
        await asyncio.sleep(0.01)
    answer.text, answer.num_tokens, answer.is_finished = "ab", 2, True
    answer.save_due.set()
    await asyncio.wait_for(task, TIMEOUT)
    assert [(c["content"], c["generated_tokens"]) for c in calls] == [("a", 1), ("ab", 2)]
    assert answer.is_stop_requested and not answer.is_saving


async def test_the_final_save_is_tried_again_while_the_database_is_away(monkeypatch):
    monkeypatch.setattr(saver, "FINAL_SAVE_RETRY_S", (0.01, 0.02))
    calls: list[dict[str, Any]] = []

    def message_finish(**fields: Any) -> str:
        calls.append(fields)
        if len(calls) < 3:
            raise OperationalError("the database is away")
        return "stored"

    monkeypatch.setattr(services, "message_finish", message_finish)
    assert await saver.store_final(message_id="m1", content="x") == "stored"
    assert len(calls) == 3
    monkeypatch.setattr(saver, "FINAL_SAVE_GIVE_UP_S", 0.0)
    calls.clear()
    with pytest.raises(OperationalError):
        await saver.store_final(message_id="m1", content="x")
    assert len(calls) == 1
