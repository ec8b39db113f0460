"""The fan-out on the real Redis channel layer (REDIS_URL), as deployments run it, and the
rule that a cancellation the layer reports as an outage still ends the task.

Skipped without REDIS_URL, except in CI (`CI` set), where a missing Redis is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from channels.layers import get_channel_layer
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatui.layers import LAYER_FAILURES, raise_if_cancelled
from chatui.streaming import publish
from chatui.streaming.answer import Answer, listen
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import connect, receive_until, setup_owner, wait_idle

REDIS_URL = os.environ.get("REDIS_URL", "")

LISTEN_ROUNDS = 24  # a cancel that redis-py reports as its own timeout came in about 1 of 3


def _fresh_redis_layer(settings) -> Any:
    """A new layer (with its own connections) on the real Redis, as `get_channel_layer()`."""
    if not REDIS_URL:
        if os.environ.get("CI"):
            pytest.fail("CI is set but REDIS_URL is not: the Redis layer test cannot run")
        pytest.skip("REDIS_URL is not set")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatui.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
        }
    }
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    return layer


async def _flush(layer: Any) -> None:
    """The test's keys, and its connections while the loop runs."""
    async with asyncio.timeout(10):
        await layer.flush()


@pytest.fixture
async def redis_layer(settings):
    layer = _fresh_redis_layer(settings)
    yield layer
    await _flush(layer)


async def test_a_cancel_reported_as_a_layer_failure_still_ends_a_retry_loop():
    async def read_like_redis_py() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379") from None

    async def retry_forever() -> None:
        while True:
            try:
                await read_like_redis_py()
            except LAYER_FAILURES as exc:
                raise_if_cancelled(exc)
                await asyncio.sleep(0.01)

    task = asyncio.create_task(retry_forever())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled()


async def test_an_outage_is_not_taken_for_a_cancel():
    failures = []

    async def retry_twice() -> None:
        for _ in range(2):
            try:
                raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379")
            except LAYER_FAILURES as exc:
                raise_if_cancelled(exc)
                failures.append(exc)

    await retry_twice()
    assert len(failures) == 2


async def _listening(settings, round_number: int) -> tuple[Any, asyncio.Task[None]]:
    """A fresh layer and an answer's listener on it, which has just been sent a stop."""
    layer = _fresh_redis_layer(settings)
    layer.brpop_timeout = 0.5  # how long a cancelled read may take to notice (5 s by default)
    answer = Answer(f"c{round_number}", f"m{round_number}", text="")
    group = publish.generation_group(answer.conversation_id)
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    listener = asyncio.create_task(listen(answer, channel))
    await asyncio.sleep(round_number % 3 * 0.005)
    await layer.group_send(group, {"type": publish.STOP_TYPE})
    await asyncio.sleep(round_number % 4 * 0.001)
    return layer, listener


@pytest.mark.services
async def test_a_stopped_answers_listener_ends_when_cancelled(settings):
    """Cancelled in the middle of a blocking read, which redis-py may report as its own
    timeout, the listener must end all the same (not retry as if Redis were away)."""
    for round_number in range(LISTEN_ROUNDS):
        layer, listener = await _listening(settings, round_number)
        listener.cancel()
        await asyncio.wait({listener}, timeout=10)
        assert listener.cancelled(), f"round {round_number}: the listener outlived its cancel"
        await _flush(layer)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
async def test_tokens_fan_out_to_every_socket_and_stop_crosses_the_layer(endpoints, redis_layer):
    endpoints.tgi.queue(
        Script(tokens=["Hello", " over", " Redis"]),
        Script(tokens=[f"t{i} " for i in range(200)], delay=0.05),
    )
    owner, cid = await setup_owner()
    first, second = await connect(owner, cid), await connect(owner, cid)
    await first.send_json_to({"type": "send", "content": "hi", "parent_id": None})
    for socket in (first, second):
        events = await receive_until(socket, "final")
        tokens = [e["token"] for e in events if e["type"] == "token"]
        assert tokens == ["Hello", " over", " Redis"]
        assert events[-1]["message"]["content"] == "Hello over Redis"
    await wait_idle(cid)

    # A stop sent to the generation group (what a second server process does) ends it.
    answer_id = events[-1]["message"]["id"]
    await first.send_json_to({"type": "send", "content": "long", "parent_id": answer_id})
    await receive_until(second, "token")
    await redis_layer.group_send(publish.generation_group(cid), {"type": publish.STOP_TYPE})
    final = (await receive_until(second, "final"))[-1]["message"]
    assert final["interrupted"] is True
    assert await asyncio.to_thread(endpoints.tgi.disconnected.wait, 20)
    await wait_idle(cid)
    await first.disconnect()
    await second.disconnect()
