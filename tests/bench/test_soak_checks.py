"""The soak's judges (`bench.soak_checks.compare`, `bench.soak.rss_slopes`): a message lost,
changed, never shown or left generating is caught, and so is memory that keeps growing."""

from __future__ import annotations

import pytest

from bench.soak import Sample, rss_slopes
from bench.soak_checks import Stored, compare
from bench.soak_memory import steep
from bench.soak_visitor import Seen

CID = "c1"


def seen(role: str, content: str, parent: str | None = None, final: bool = True) -> Seen:
    return Seen(conversation_id=CID, role=role, parent_id=parent, content=content, is_final=final)


def stored(role: str, content: str, parent: str | None = None, generating: bool = False):
    return Stored(CID, role, parent, content, generating)


STORED = {"q": stored("user", "Hi"), "a": stored("assistant", "Hello", "q")}


def test_the_database_as_the_visitor_saw_it_loses_nothing():
    saw = [("q", seen("user", "Hi")), ("a", seen("assistant", "Hello", "q"))]
    result = compare(saw, {CID}, STORED)
    assert (result.num_seen, result.num_lost) == (2, 0)


def test_missing_changed_unseen_and_generating_messages_are_each_lost():
    saw = [("q", seen("user", "Hi")), ("a", seen("assistant", "Hello", "q"))]
    result = compare(saw, {CID}, {"q": stored("user", "Hi")})
    assert (result.missing, result.num_lost) == (1, 1)

    result = compare(saw, {CID}, {"q": stored("user", "Hi"), "a": stored("assistant", "Hel", "q")})
    assert (result.changed, result.num_lost) == (1, 1)

    moved = {"q": stored("user", "Hi"), "a": stored("assistant", "Hello", None)}
    assert compare(saw, {CID}, moved).changed == 1

    extra = dict(STORED)
    extra["b"] = stored("assistant", "", "q", generating=True)
    result = compare(saw, {CID}, extra)
    assert (result.unseen, result.generating, result.num_lost) == (1, 1, 2)


def test_an_answer_seen_while_streaming_is_compared_by_place_not_text():
    saw = [("q", seen("user", "Hi")), ("a", seen("assistant", "Hel", "q", final=False))]
    assert compare(saw, {CID}, STORED).num_lost == 0


def samples(web: list[float], inference: list[float]) -> list[Sample]:
    return [
        Sample(minute, [w], i, 0, 0, 100, 10, 0)
        for minute, (w, i) in enumerate(zip(web, inference, strict=True))
    ]


def test_memory_that_keeps_growing_is_reported_and_a_flat_run_is_not():
    assert steep(rss_slopes(samples([100, 150, 151, 151, 152, 151], [2000] * 6))) == []
    slopes = rss_slopes(samples([100, 110, 120, 160, 200, 240], [2000] * 6))
    assert slopes["web 0"] == pytest.approx(40.0) and slopes["inference"] == 0.0
    grown = steep(slopes)
    assert len(grown) == 1 and grown[0].startswith("web 0")
    assert rss_slopes(samples([100, 400], [2000, 9000])) == {"web 0": None, "inference": None}


def test_the_idle_row_at_the_end_is_not_in_the_slope():
    rows = samples([100] * 6, [2000, 2000, 2000, 2000, 2000, 2000])
    rows.append(Sample(5, [100], 1500, 0, 0, 100, 10, 0, label="end, idle"))
    assert rss_slopes(rows)["inference"] == 0.0
