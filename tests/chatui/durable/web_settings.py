"""Settings of the daphne processes these tests start: production settings (Postgres from
DATABASE_URL, Redis from REDIS_URL) with a quick heartbeat and reaper, so that an answer whose
process was killed is marked interrupted within seconds instead of a quarter of a minute."""

from __future__ import annotations

from config.settings.base import *  # noqa: F403
from config.settings.base import CHANNEL_LAYERS, REDIS_URL

CHATUI_HEARTBEAT_INTERVAL_S = 0.5
CHATUI_STALE_AFTER_S = 3.0

# NOTE: redis-py 8 gives every read a 5 s timeout, no longer than channels_redis's blocking
# receive (BZPOPMIN, 5 s): a process that hears nothing for 5 s loses a socket to
# `TimeoutError`. The production settings need this too (test_durable_redis_layer.py).
if REDIS_URL:
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": REDIS_URL, "socket_timeout": None}]
