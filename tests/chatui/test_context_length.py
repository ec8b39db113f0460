"""`contextLength`: a conversation longer than the model reads loses its oldest turns, and the
user is told."""

from __future__ import annotations

import json

import pytest

from chatui.prompt_assembly import CONTEXT_CUT
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import connect, db, make_owner, new_conversation, send_and_finish


@pytest.mark.django_db(transaction=True)
async def test_oldest_turns_are_left_out_with_a_notice(endpoints):
    models = [
        {"id": "short", "name": "org/short", "contextLength": 60,
         "parameters": {"max_new_tokens": 10},
         "endpoints": [{"type": "openai", "baseURL": endpoints.openai.base_url}]},
    ]  # fmt: skip
    endpoints.configure(MODELS=json.dumps(models), LLM_SUMMARIZATION="false")
    endpoints.openai.queue(Script(tokens=["Noted."]), Script(tokens=["Noted again."]))
    owner = await db(make_owner)()
    cid = await db(new_conversation)(owner, "short")
    socket = await connect(owner, cid)
    first = await send_and_finish(socket, "one " * 30)  # 120 characters: fits 50 tokens
    assert not [e for e in first if e["type"] == "notice"]
    second = await send_and_finish(socket, "two " * 30, parent_id=first[-1]["message"]["id"])
    await socket.disconnect()
    (notice,) = [e for e in second if e["type"] == "notice"]
    assert notice["message"] == CONTEXT_CUT.format(count=1, model="org/short")
    sent = endpoints.openai.generation_requests[-1].body["messages"]
    assert [m["content"] for m in sent] == ["Noted.", "two " * 30]
