"""Two real daphne processes on Redis and Postgres: a message sent through one streams live on
the other, answers outlive their sockets, and an answer whose process dies is kept, marked
interrupted by the survivor's reaper, and can be continued or regenerated there."""

from __future__ import annotations

import asyncio
import time

import pytest

from chatui.limits import TOO_MANY_GENERATIONS
from tests.chatui.durable.cluster import Visitor, apply_tokens, stored_answer
from tests.chatui.durable.conftest import CLUSTER_LIMITS, Cluster
from tests.chatui.fake_endpoints import Script

pytestmark = pytest.mark.services

WAIT_S = 20.0


def words(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i} " for i in range(count)]


async def wait_for_saved_text(cluster: Cluster, message_id: str) -> dict:
    """The row once a batched save has stored some text while the answer still runs."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        row = await asyncio.to_thread(stored_answer, cluster.database_url, message_id)
        if row["content"]:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("no partial save reached the database")


async def test_a_message_sent_through_one_process_streams_live_on_the_other(cluster):
    tokens = words("w", 40)
    cluster.tgi.queue(Script(tokens=tokens, delay=0.05), Script(tokens=words("s", 400), delay=0.02))
    visitor = await Visitor().open(cluster.a)
    cid = await visitor.new_conversation(cluster.a)
    on_a, on_b = await visitor.socket(cluster.a, cid), await visitor.socket(cluster.b, cid)

    await on_a.send({"type": "send", "content": "Count", "parent_id": None})
    events = await on_b.until("token")
    # While it streams, every process's sidebar marks the conversation as being written.
    for server in (cluster.a, cluster.b):
        listed = await visitor.sidebar(server)
        assert [(c["id"], c["is_generating"]) for c in listed] == [(cid, True)]
    events += await on_b.until("final")

    user, answer = (e["message"] for e in events if e["type"] == "message")
    assert (user["role"], user["content"], answer["role"]) == ("user", "Count", "assistant")
    streamed = [e for e in events if e["type"] == "token"]
    assert len(streamed) > 1, "the other process got one lump, not a live stream"
    assert apply_tokens("", events, answer["id"]) == "".join(tokens)
    final = events[-1]["message"]
    assert final["content"] == "".join(tokens).strip()
    assert (final["is_generating"], final["interrupted"]) == (False, False)
    assert apply_tokens("", await on_a.until("final"), answer["id"]) == "".join(tokens)
    await on_b.until("status", status="done")
    assert not [c for c in await visitor.sidebar(cluster.b) if c["is_generating"]]

    # Stop from the other process's tab stops the answer running on the first.
    await on_a.send({"type": "send", "content": "More", "parent_id": final["id"]})
    await on_a.until("token")
    await on_b.send({"type": "stop"})
    stopped = (await on_a.until("final"))[-1]["message"]
    assert stopped["interrupted"] is True and stopped["content"].startswith("s0 ")
    assert (await on_a.until("status"))[-1]["status"] == "stopped"
    assert await asyncio.to_thread(cluster.tgi.disconnected.wait, WAIT_S)
    for socket in (on_a, on_b):
        await socket.close()
    await visitor.close()


async def test_closing_the_socket_keeps_the_answer_and_reconnecting_resumes_it(cluster):
    tokens = words("t", 60)
    full = "".join(tokens)
    cluster.tgi.queue(Script(tokens=tokens, delay=0.03))
    visitor = await Visitor().open(cluster.a)
    cid = await visitor.new_conversation(cluster.a)
    first = await visitor.socket(cluster.a, cid)
    await first.send({"type": "send", "content": "Go", "parent_id": None})
    for _ in range(5):
        events = await first.until("token")
    answer_id = events[-1]["message_id"]
    await first.close()

    # Saved as it grows (batched), while nobody watches.
    row = await wait_for_saved_text(cluster, answer_id)
    assert row["is_generating"] is True and full.startswith(row["content"])

    # Back on the other process (a snapshot from the database, then the running task's
    # text), and on the generating one (its live buffer): each page ends with the answer.
    on_b = await visitor.socket(cluster.b, cid)
    on_a = await visitor.socket(cluster.a, cid)
    for socket in (on_b, on_a):
        answer = socket.snapshot["messages"][-1]
        assert answer["id"] == answer_id and answer["is_generating"] is True
        assert full.startswith(answer["content"])
    assert len(on_a.snapshot["messages"][-1]["content"]) >= len(row["content"])
    for socket in (on_b, on_a):
        events = await socket.until("final")
        shown = apply_tokens(socket.snapshot["messages"][-1]["content"], events, answer_id)
        assert shown == full
        assert events[-1]["message"]["content"] == full.strip()

    row = await asyncio.to_thread(stored_answer, cluster.database_url, answer_id)
    assert row == {
        "content": full.strip(),
        "is_generating": False,
        "interrupted": False,
        "error": "",
    }
    assert len(cluster.tgi.generation_requests) == 1 and not cluster.tgi.disconnected.is_set()
    for socket in (on_a, on_b):
        await socket.close()
    await visitor.close()


async def test_a_killed_process_leaves_an_interrupted_answer_that_the_other_continues(cluster):
    tokens = words("k", 400)
    cluster.tgi.queue(
        Script(tokens=tokens, delay=0.03),
        Script(tokens=["more", " words"]),
        Script(tokens=["A", " fresh", " answer"]),
    )
    visitor = await Visitor().open(cluster.b)
    cid = await visitor.new_conversation(cluster.b)
    on_a, on_b = await visitor.socket(cluster.a, cid), await visitor.socket(cluster.b, cid)
    await on_a.send({"type": "send", "content": "Talk", "parent_id": None})
    events = await on_b.until("token")
    user_id = next(e["message"]["id"] for e in events if e["type"] == "message")
    answer_id = events[-1]["message_id"]
    await wait_for_saved_text(cluster, answer_id)

    cluster.a.kill()  # the process running the answer
    assert await asyncio.to_thread(cluster.tgi.disconnected.wait, WAIT_S)
    saved = await asyncio.to_thread(stored_answer, cluster.database_url, answer_id)
    assert saved["is_generating"] is True and "".join(tokens).startswith(saved["content"])

    reaped = (await on_b.until("final"))[-1]["message"]  # from the survivor's reaper
    assert (reaped["is_generating"], reaped["interrupted"]) == (False, True)
    assert reaped["content"] == saved["content"] != ""
    row = await asyncio.to_thread(stored_answer, cluster.database_url, answer_id)
    assert (row["is_generating"], row["interrupted"], row["content"]) == (
        False,
        True,
        saved["content"],
    )
    assert not [c for c in await visitor.sidebar(cluster.b) if c["is_generating"]]

    # The survivor continues the kept answer in place...
    await on_b.send({"type": "continue", "message_id": answer_id})
    continued = (await on_b.until("final"))[-1]["message"]
    assert continued["id"] == answer_id
    assert continued["content"] == saved["content"] + "more words"
    assert continued["interrupted"] is False
    prompt = cluster.tgi.generation_requests[-1].body["inputs"]
    assert prompt.endswith(saved["content"])
    # ...and regenerates it as a new sibling.
    await on_b.send({"type": "regenerate", "message_id": answer_id})
    events = await on_b.until("final")
    sibling = events[-1]["message"]
    assert sibling["id"] != answer_id and sibling["parent_id"] == user_id
    assert sibling["content"] == "A fresh answer"
    await on_b.close()
    await visitor.close()


async def test_the_concurrency_limit_holds_across_processes(cluster):
    assert CLUSTER_LIMITS["concurrentGenerations"] == 1
    cluster.tgi.queue(Script(tokens=words("c", 400), delay=0.03))
    visitor = await Visitor().open(cluster.a)
    busy, other = (
        await visitor.new_conversation(cluster.a),
        await visitor.new_conversation(cluster.b),
    )
    on_a = await visitor.socket(cluster.a, busy)
    await on_a.send({"type": "send", "content": "Long", "parent_id": None})
    await on_a.until("token")
    on_b = await visitor.socket(cluster.b, other)
    await on_b.send({"type": "send", "content": "Meanwhile", "parent_id": None})
    refused = (await on_b.until("error"))[-1]
    assert refused == {
        "type": "error",
        "message": TOO_MANY_GENERATIONS.format(limit=1),
        "message_id": None,
    }
    await on_a.send({"type": "stop"})
    await on_a.until("final")
    await on_b.send({"type": "send", "content": "Now", "parent_id": None})
    assert (await on_b.until("final"))[-1]["message"]["content"] == "Hello, world!"
    for socket in (on_a, on_b):
        await socket.close()
    await visitor.close()
