"""Which endpoint of a model to try: weighted random choice, skipping the ones that failed.

Must not import Django or the database layer.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatui.models_config import Endpoint

logger = logging.getLogger(__name__)


class EndpointHealth:
    """Marks an endpoint down for ``cooldown_s`` after ``failure_threshold`` failures in a row.

    In-process only; safe to share between threads and tasks.
    """

    def __init__(self, failure_threshold: int = 3, cooldown_s: float = 30.0) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._down_until: dict[str, float] = {}

    @staticmethod
    def _key(endpoint: Endpoint | str) -> str:
        return endpoint if isinstance(endpoint, str) else endpoint.key

    def is_healthy(self, endpoint: Endpoint | str) -> bool:
        with self._lock:
            return self._down_until.get(self._key(endpoint), 0.0) <= time.monotonic()

    def record_failure(self, endpoint: Endpoint | str) -> None:
        key = self._key(endpoint)
        with self._lock:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            if count >= self.failure_threshold:
                self._down_until[key] = time.monotonic() + self.cooldown_s
                self._failures[key] = 0
                logger.warning("Endpoint %s marked down for %.0f s", key, self.cooldown_s)

    def record_success(self, endpoint: Endpoint | str) -> None:
        key = self._key(endpoint)
        with self._lock:
            self._failures.pop(key, None)
            self._down_until.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._down_until.clear()


def choose_endpoint(
    endpoints: tuple[Endpoint, ...] | list[Endpoint],
    *,
    health: EndpointHealth,
    rng: random.Random,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> Endpoint | None:
    """Weighted random choice among untried endpoints, healthy ones first."""
    candidates = [e for e in endpoints if e.key not in exclude]
    if not candidates:
        return None
    pool = [e for e in candidates if health.is_healthy(e)] or candidates
    return rng.choices(pool, weights=[e.weight for e in pool])[0]
