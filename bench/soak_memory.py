"""The soak's memory rule and breakdown: each process's resident memory is judged by the
least-squares slope over the second half of the run (a server that keeps growing fails; one
that reached its plateau early passes), and the model server's own report
(`GET /debug/memory`, on with `INFERENCE_MEMORY_DEBUG=1`) says where the memory is.

Must not import Django, `chatui` or `inference`: the report is read over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

SLOPE_LIMIT_MB_PER_MIN = 0.5  # per process, over the second half (~0.7 GB a day at most)
MIN_POINTS = 3  # a slope over fewer points says nothing
MEMORY_PATH = "/debug/memory"
MEMORY_DEBUG_ENV = {"INFERENCE_MEMORY_DEBUG": "1"}
TOP_GROWTH_SHOWN = 3


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of `ys` over `xs` (0 for fewer than two distinct xs)."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    n = len(xs)
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def second_half_slope(minutes: Sequence[float], values: Sequence[float]) -> float | None:
    """MB per minute over the samples in the second half of the run (from half the last
    sample's minute on); None with fewer than `MIN_POINTS` there."""
    if not minutes:
        return None
    half = minutes[-1] / 2
    points = [(m, v) for m, v in zip(minutes, values, strict=True) if m >= half]
    if len(points) < MIN_POINTS:
        return None
    return slope([m for m, _ in points], [v for _, v in points])


def steep(slopes: dict[str, float | None], limit: float = SLOPE_LIMIT_MB_PER_MIN) -> list[str]:
    """A line for each process whose second-half slope is above `limit`."""
    return [
        f"{name}: RSS grew {value:.2f} MB/min over the second half (limit {limit} MB/min)"
        for name, value in slopes.items()
        if value is not None and value > limit
    ]


def fetch_report(base_url: str) -> dict[str, Any] | None:
    """The model server's memory report (None where the server does not serve one)."""
    try:
        response = httpx.get(base_url + MEMORY_PATH, timeout=30)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def breakdown(report: dict[str, Any] | None) -> str:
    """One line: glibc's heap, Python's traced memory and top growth, the caches that hold
    anything (size/limit)."""
    if not report:
        return "no memory report"
    parts = [f"RSS {report['rss_mb']:.0f}"]
    if heap := report.get("heap"):
        parts.append(
            f"heap {heap['arena_mb']:.0f} (in use {heap['in_use_mb']:.0f}, free "
            f"{heap['free_mb']:.0f}), mmapped {heap['mmapped_mb']:.0f} in "
            f"{heap['mmapped_blocks']:.0f}"
        )
    if python := report.get("python"):
        growth = ", ".join(
            f"{g['where'].rsplit('/', 1)[-1]} {g['size_diff_kb']:+.0f} kB"
            for g in python["top_growth"][:TOP_GROWTH_SHOWN]
        )
        parts.append(f"python {python['traced_mb']:.1f} (top growth: {growth})")
    if engine := report.get("engine"):
        held = [
            f"{name} {entry['size']}/{entry['limit'] if entry['limit'] is not None else '-'}"
            for name, entry in engine["caches"].items()
            if entry["size"] and name != "free_blocks"
        ]
        parts.append("caches: " + (", ".join(held) or "empty"))
    parts.append(f"metrics series {report.get('metrics_series', 0)}")
    return "; ".join(parts) + " (MB)"
