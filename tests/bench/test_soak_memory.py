"""The soak's memory rule (least-squares slope over the second half) and its breakdown line."""

from __future__ import annotations

import pytest

from bench.soak_memory import (
    SLOPE_LIMIT_MB_PER_MIN,
    breakdown,
    second_half_slope,
    slope,
    steep,
)


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([0, 1, 2, 3], [5, 7, 9, 11]) == pytest.approx(2.0)
    assert slope([0, 1, 2], [0, 1, 3]) == pytest.approx(1.5)
    assert slope([0, 1, 2, 3], [0, 3, 0, 3]) == pytest.approx(0.6)  # endpoints say 1.0
    assert slope([4, 4, 4], [1, 2, 3]) == 0.0
    assert slope([1], [1]) == 0.0
    with pytest.raises(ValueError):
        slope([0, 1], [0])


def test_only_the_second_half_counts() -> None:
    minutes = list(range(11))
    plateau = [2267, 2297, 2318, 2329, 2349, 2360, 2360, 2360, 2360, 2360, 2360]
    assert second_half_slope(minutes, plateau) == pytest.approx(0.0)
    climbing = [2000 + 13 * m for m in minutes]
    assert second_half_slope(minutes, climbing) == pytest.approx(13.0)
    # issue 27's table: still climbing in its second half, over the limit
    issue = [2267, 2297, 2318, 2329, 2349, 2355, 2365, 2384, 2390, 2390, 2402]
    assert second_half_slope(minutes, issue) > SLOPE_LIMIT_MB_PER_MIN


def test_too_few_points_give_no_slope() -> None:
    assert second_half_slope([], []) is None
    assert second_half_slope([0, 1, 2], [1, 2, 3]) is None  # two points in the second half
    assert second_half_slope([0, 1, 2, 3, 4], [1, 2, 3, 4, 5]) == pytest.approx(1.0)


def test_steep_names_each_process_over_the_limit() -> None:
    lines = steep({"web 0": 0.1, "web 1": None, "inference": 0.8})
    assert len(lines) == 1 and lines[0].startswith("inference: RSS grew 0.80 MB/min")
    assert steep({"inference": SLOPE_LIMIT_MB_PER_MIN}) == []


def test_breakdown_names_heap_python_and_caches() -> None:
    report = {
        "rss_mb": 2300.4,
        "heap": {
            "arena_mb": 120.0,
            "in_use_mb": 80.0,
            "free_mb": 40.0,
            "mmapped_mb": 30.0,
            "mmapped_blocks": 3.0,
            "top_free_mb": 1.0,
        },
        "python": {
            "traced_mb": 12.5,
            "top_growth": [{"where": "/x/inference/engine/engine.py:80", "size_diff_kb": 42.0}],
        },
        "engine": {
            "caches": {
                "grammar_cache": {"size": 3, "limit": 256},
                "subscribers": {"size": 0, "limit": None},
                "inbox": {"size": 2, "limit": None},
            }
        },
        "metrics_series": 321,
    }
    line = breakdown(report)
    assert line.startswith("RSS 2300; heap 120 (in use 80, free 40), mmapped 30 in 3")
    assert "engine.py:80 +42 kB" in line
    assert "grammar_cache 3/256, inbox 2/-" in line and "subscribers" not in line
    assert "metrics series 321" in line
    assert breakdown(None) == "no memory report"
