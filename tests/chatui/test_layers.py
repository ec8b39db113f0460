"""The fan-out on the real Redis channel layer (REDIS_URL), as deployments run it.

Skipped without REDIS_URL, except in CI (`CI` set), where a missing Redis is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from channels.layers import get_channel_layer

from chatui.streaming import bus
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import connect, db, make_owner, receive_until, wait_idle
from tests.chatui.test_consumers import _new_conversation

REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_layer(settings):
    if not REDIS_URL:
        if os.environ.get("CI"):
            pytest.fail("CI is set but REDIS_URL is not: the Redis layer test cannot run")
        pytest.skip("REDIS_URL is not set")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
        }
    }
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    yield layer


async def test_tokens_fan_out_to_every_socket_and_stop_crosses_the_layer(endpoints, redis_layer):
    endpoints.tgi.queue(
        Script(tokens=["Hello", " over", " Redis"]),
        Script(tokens=[f"t{i} " for i in range(200)], delay=0.05),
    )
    owner = await db(make_owner)()
    cid = await db(_new_conversation)(owner)
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
    await redis_layer.group_send(bus.generation_group(cid), {"type": bus.STOP_TYPE})
    final = (await receive_until(second, "final"))[-1]["message"]
    assert final["interrupted"] is True
    assert await asyncio.to_thread(endpoints.tgi.disconnected.wait, 20)
    await wait_idle(cid)
    await first.disconnect()
    await second.disconnect()
