"""The Redis layer's receive path (`chatui.layer_reader`) on the real Redis (REDIS_URL): a
receive cancelled on one channel must not lose the messages of another channel of the same
process (channels_redis's own receive lost about one in twenty here under such churn), and
the buffers of channels that nobody receives on must go.

Skipped without REDIS_URL, except in CI (`CI` set), where a missing Redis is a failure.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from typing import Any

import pytest

from chatui import layer_reader
from chatui.layers import RedisChannelLayer

pytestmark = pytest.mark.services

REDIS_URL = os.environ.get("REDIS_URL", "")
NUM_MESSAGES = 600
NUM_CHURNERS = 4  # consumers that connect and go away again and again
TIMEOUT_S = 20


@pytest.fixture
async def layers():
    """Two layers on one prefix, as two server processes have them."""
    if not REDIS_URL:
        if os.environ.get("CI"):
            pytest.fail("CI is set but REDIS_URL is not: the Redis layer test cannot run")
        pytest.skip("REDIS_URL is not set")
    config: dict[str, Any] = {
        "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
        "prefix": f"reader-{uuid.uuid4().hex[:8]}",
    }
    pair = RedisChannelLayer(**config), RedisChannelLayer(**config)
    yield pair
    async with asyncio.timeout(10):
        await pair[0].flush()
        await pair[1].close_pools()


async def _churn(layer: Any, stop: asyncio.Event, rng: random.Random) -> int:
    """Receives on fresh channels, each cancelled after a few milliseconds: what sockets that
    disconnect and answers that end do to their receives."""
    count = 0
    while not stop.is_set():
        receiving = asyncio.create_task(layer.receive(await layer.new_channel()))
        await asyncio.sleep(rng.random() * 0.01)
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
        count += 1
    return count


async def test_cancelled_receives_lose_no_message_of_another_channel(layers):
    receiver, sender = layers
    rng = random.Random(7)
    channel = await receiver.new_channel()
    received: list[int] = []

    async def read() -> None:
        while len(received) < NUM_MESSAGES:
            received.append((await receiver.receive(channel))["seq"])

    reading = asyncio.create_task(read())
    stop = asyncio.Event()
    churners = [asyncio.create_task(_churn(receiver, stop, rng)) for _ in range(NUM_CHURNERS)]
    for seq in range(NUM_MESSAGES):
        await sender.send(channel, {"type": "token", "seq": seq})
        await asyncio.sleep(rng.random() * 0.002)
    await asyncio.wait({reading}, timeout=TIMEOUT_S)
    stop.set()
    cancels = sum(await asyncio.gather(*churners))
    reading.cancel()
    assert cancels > NUM_MESSAGES  # the churn really ran beside the messages
    missing = sorted(set(range(NUM_MESSAGES)) - set(received))
    assert not missing, f"{len(missing)} messages lost, the first {missing[:5]}"
    assert received == list(range(NUM_MESSAGES))


async def test_buffers_go_with_their_receivers(layers, monkeypatch):
    receiver, sender = layers
    # A channel received on once, as the readiness probe does: nothing stays behind.
    probe = await receiver.new_channel()
    await sender.send(probe, {"type": "probe"})
    assert (await asyncio.wait_for(receiver.receive(probe), TIMEOUT_S))["type"] == "probe"
    assert receiver.num_buffers == 0
    await asyncio.sleep(0.05)
    assert receiver.num_readers == 0  # no pop left blocking with nobody to serve

    # A consumer that went away: messages still on their way to it are dropped after the
    # layer's expiry, once the reader (kept busy by another receiver) sweeps.
    monkeypatch.setattr(layer_reader, "SWEEP_EVERY_S", 0.0)
    receiver.expiry = 1
    gone = await receiver.new_channel()
    waiting = asyncio.create_task(receiver.receive(gone))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    alive = await receiver.new_channel()
    listening = asyncio.create_task(receiver.receive(alive))
    await sender.send(gone, {"type": "late"})
    await sender.send(alive, {"type": "first"})
    assert (await asyncio.wait_for(listening, TIMEOUT_S))["type"] == "first"
    assert receiver.num_buffers == 1  # the late message's, kept for now
    await asyncio.sleep(1.2)
    listening = asyncio.create_task(receiver.receive(alive))
    await sender.send(alive, {"type": "second"})
    assert (await asyncio.wait_for(listening, TIMEOUT_S))["type"] == "second"
    assert receiver.num_buffers == 0
