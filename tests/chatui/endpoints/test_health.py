"""chatui.endpoints.health: the weighted choice of an endpoint and the health marks."""

from __future__ import annotations

import random
from collections import Counter

from chatui.endpoints import EndpointHealth
from tests.chatui.endpoints.helpers import collect, model, run, tgi


async def test_weighted_choice_is_seeded(fake_tgi, client) -> None:
    light, heavy = fake_tgi(), fake_tgi()
    m = model(tgi(light, weight=1), tgi(heavy, weight=4))

    async def picks(seed: int) -> list[str]:
        rng, chosen = random.Random(seed), []
        for _ in range(25):
            before = len(heavy.generation_requests)
            await collect(run(m, client, rng=rng))
            chosen.append("heavy" if len(heavy.generation_requests) > before else "light")
        return chosen

    first, second = await picks(7), await picks(7)
    assert first == second
    counts = Counter(first)
    assert counts["heavy"] > counts["light"] > 0


def test_health_marks_after_consecutive_failures() -> None:
    health = EndpointHealth(failure_threshold=2, cooldown_s=600)
    health.record_failure("a")
    assert health.is_healthy("a")
    health.record_success("a")
    health.record_failure("a")
    assert health.is_healthy("a")  # the success reset the count
    health.record_failure("a")
    assert not health.is_healthy("a") and health.is_healthy("b")
    expired = EndpointHealth(failure_threshold=1, cooldown_s=0)
    expired.record_failure("a")
    assert expired.is_healthy("a")
