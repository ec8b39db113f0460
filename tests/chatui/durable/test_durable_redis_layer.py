"""The Redis channel layer exactly as the production settings build it from REDIS_URL: a
process whose sockets hear nothing for a while must keep them (redis-py 8 reads with a 5 s
timeout by default, which a blocking receive of 5 s outlasts)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys

import pytest
from django.utils.module_loading import import_string

from bench.processes import PROJECT_ROOT as ROOT

pytestmark = pytest.mark.services

QUIET_S = 6.5  # longer than channels_redis's 5 s blocking receive


def production_layer_config(redis_url: str) -> dict:
    """`CHANNEL_LAYERS["default"]` of config.settings.base with this REDIS_URL."""
    script = "import json; from config.settings import base; print(json.dumps(base.CHANNEL_LAYERS))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)["default"]


async def test_a_quiet_channel_keeps_receiving(service_urls):
    config = production_layer_config(service_urls[1])
    assert config["BACKEND"] == "chatui.layers.RedisChannelLayer"
    layer_class = import_string(config["BACKEND"])
    layer = layer_class(**{**config["CONFIG"], "prefix": f"quiet-{secrets.token_hex(4)}"})
    channel = await layer.new_channel()
    receiving = asyncio.create_task(layer.receive(channel))
    try:
        await asyncio.sleep(QUIET_S)
        assert not receiving.done(), receiving.exception()
        await layer.send(channel, {"type": "hello"})
        assert (await asyncio.wait_for(receiving, 10))["type"] == "hello"
    finally:
        receiving.cancel()
        await layer.flush()
        await layer.close_pools()
