"""Settings of the daphne processes these tests start: production settings (Postgres from
DATABASE_URL, Redis from REDIS_URL) with a quick heartbeat and reaper, so that an answer whose
process was killed is marked interrupted within seconds instead of a quarter of a minute."""

from __future__ import annotations

from config.settings.base import *  # noqa: F403

CHATUI_HEARTBEAT_INTERVAL_S = 0.5
CHATUI_STALE_AFTER_S = 3.0
