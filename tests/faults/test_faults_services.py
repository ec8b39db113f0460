"""The services under the web processes fail while answers stream: Redis restarts under two web
processes, Postgres refuses connections for a few seconds. Streams resume or end cleanly and
the database ends up with every answer as its visitors saw it: never a silent loss."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.chatui.durable.cluster import Visitor, apply_tokens, stored_answer
from tests.chatui.fake_endpoints import Script
from tests.faults.conftest import models_for
from tests.faults.page import Page

pytestmark = pytest.mark.services

SAVED_WITHIN_S = 30.0
RECONNECT = 4012  # the close code of a socket whose channel layer restarted


def words(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i} " for i in range(count)]


async def stored_when_done(database_url: str, message_id: str) -> dict:
    """The row once the answer is no longer generating (the database is the judge)."""
    deadline = time.monotonic() + SAVED_WITHIN_S
    while time.monotonic() < deadline:
        row = await asyncio.to_thread(stored_answer, database_url, message_id)
        if not row["is_generating"]:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"message {message_id} still generating after {SAVED_WITHIN_S}s")


def assistant_id(events: list[dict]) -> str:
    return next(
        e["message"]["id"]
        for e in events
        if e["type"] == "message" and e["message"]["role"] == "assistant"
    )


async def events_until_final_or_close(socket) -> tuple[list[dict], int | None]:
    """The socket's events up to `final`, and the close code if it closed first."""
    events: list[dict] = []
    try:
        while True:
            event = await socket.receive(timeout=SAVED_WITHIN_S)
            events.append(event)
            if event["type"] == "final":
                return events, None
    except ConnectionClosed as exc:
        return events, exc.rcvd.code if exc.rcvd else None


async def streams_across(sender: Page, watcher: Page, parent_id: str, tokens: list[str]) -> str:
    """A message sent on one process's page streams, token by token, to another's."""
    await sender.send({"type": "send", "content": "Next", "parent_id": parent_id})
    events = await watcher.socket.until("token")  # type: ignore[union-attr]
    answer_id = assistant_id(events)
    for event in events:
        watcher.apply(event)
    final = await watcher.final(answer_id)
    assert watcher.texts[answer_id] == "".join(tokens)  # every token, in place
    assert final["content"] == "".join(tokens).strip()
    assert final["error"] is None and not watcher.close_codes
    assert (await sender.final(answer_id))["content"] == final["content"]
    return answer_id


async def test_redis_restarting_mid_answer_loses_nothing(fake_tgi, database_url, redis, web):
    tokens, then_b, then_a = words("r", 150), words("n", 20), words("m", 20)
    fake_tgi.queue(
        Script(tokens=tokens, delay=0.04),
        Script(tokens=then_b, delay=0.02),
        Script(tokens=then_a, delay=0.02),
    )
    models = models_for(fake_tgi.url)
    a = web.start("web-a", database_url=database_url, models=models, redis_url=redis.url)
    b = web.start("web-b", database_url=database_url, models=models, redis_url=redis.url)
    visitor = await Visitor().open(a)
    cid = await visitor.new_conversation(a)
    # Two sockets on b: only one of them is waiting on Redis when it goes away.
    on_a, on_b, on_b2 = [await visitor.socket(site, cid) for site in (a, b, b)]

    await on_a.send({"type": "send", "content": "Count", "parent_id": None})
    answer_id = assistant_id(await on_b.until("token"))  # across processes, before the fault
    redis.kill()
    await asyncio.sleep(1.0)
    redis.start()  # empty: every group and channel is gone

    # Pages opened now on either process (reconnecting as the page does, should the server
    # close them while it recovers) get the whole answer, tokens placed without a hole.
    pages = [await Page(visitor, site, cid).open() for site in (a, b)]
    finals = [await page.final(answer_id) for page in pages]
    row = await stored_when_done(database_url, answer_id)
    assert row["content"] == "".join(tokens).strip()
    assert (row["interrupted"], row["error"]) == (False, "")
    for page, final in zip(pages, finals, strict=True):
        assert final["content"] == page.texts[answer_id].strip() == row["content"]
        assert set(page.close_codes) <= {RECONNECT}, page.close_codes

    # The sockets open during the restart heard the end, or were closed as a restart closes
    # them (4012: the page reconnects), never with an error, and none went deaf.
    for socket in (on_a, on_b, on_b2):
        seen, code = await events_until_final_or_close(socket)
        if code is None:
            assert seen[-1]["message"]["content"] == row["content"]
        else:
            assert code == RECONNECT, code

    # Fresh pages: the next messages stream across processes both ways, as before the fault.
    await asyncio.gather(*(page.close() for page in pages))
    page_a, page_b = await Page(visitor, a, cid).open(), await Page(visitor, b, cid).open()
    second = await streams_across(page_b, page_a, answer_id, then_b)
    await streams_across(page_a, page_b, second, then_a)
    for page in (page_a, page_b):
        await page.close()
    await visitor.close()


async def test_postgres_refusing_connections_mid_answer_saves_the_answer_when_it_returns(
    fake_tgi, database_url, postgres_proxy, web
):
    tokens = words("p", 60)
    fake_tgi.queue(Script(tokens=tokens, delay=0.04))
    site = web.start(
        "web", database_url=postgres_proxy.url_for(database_url), models=models_for(fake_tgi.url)
    )
    visitor = await Visitor().open(site)
    cid = await visitor.new_conversation(site)
    socket = await visitor.socket(site, cid)
    await socket.send({"type": "send", "content": "Count", "parent_id": None})
    events = await socket.until("token")
    answer_id = next(
        e["message"]["id"]
        for e in events
        if e["type"] == "message" and e["message"]["role"] == "assistant"
    )

    postgres_proxy.refuse()  # for longer than the rest of the answer takes to stream
    await asyncio.sleep(len(tokens) * 0.04 + 1.5)
    postgres_proxy.accept()

    events += await socket.until("final")
    final = events[-1]["message"]
    assert apply_tokens("", events, answer_id) == "".join(tokens)
    assert final["content"] == "".join(tokens).strip() and final["error"] is None
    row = await stored_when_done(database_url, answer_id)
    assert row["content"] == final["content"] and row["interrupted"] is False
    await socket.close()
    await visitor.close()
