"""The token-path breakdown's arithmetic, on made-up stamps (no model, no server)."""

from __future__ import annotations

import pytest

from bench.token_path import ASYNC_ENGINE, STEP_ALONE, PathRow, format_rows, merge, path_row
from bench.token_probe import StreamLog, TokenStamp


def stream(num_tokens: int, step: float, gap: float, offset: float = 0.0) -> StreamLog:
    """Tokens `gap` apart: step `step` long, on the loop 1 ms after it, sent 2 ms after that."""
    log = StreamLog()
    for k in range(num_tokens):
        start = offset + k * gap
        stamp = TokenStamp(start, start + step, process_s=0.0001, loop_at=start + step + 0.001)
        log.tokens.append(stamp)
        log.sent_at.append(stamp.loop_at + 0.002)
    return log


def test_stages_are_the_gaps_between_the_stamps():
    logs = [stream(10, step=0.005, gap=0.008), stream(10, step=0.005, gap=0.008, offset=0.0004)]
    received = [[t + 0.0005 for t in log.sent_at] for log in logs]
    row = path_row("HTTP", 2, logs, received)
    assert row.itl == pytest.approx(0.008)
    assert row.step == pytest.approx(0.005)
    assert row.output == pytest.approx(0.0001)
    assert row.handoff == pytest.approx(0.001)
    assert row.framing == pytest.approx(0.002)
    assert row.socket == pytest.approx(0.0005)
    assert row.tokens == 18  # each stream's first token (its prefill) is left out


def test_in_process_rows_take_the_itl_from_the_loop():
    row = path_row(ASYNC_ENGINE, 1, [stream(5, step=0.004, gap=0.006)], [])
    assert row.itl == pytest.approx(0.006)
    assert row.socket != row.socket  # nan: nothing went over a socket


def test_rounds_merge_to_their_median_and_the_ratio_uses_the_step_alone():
    rows = [
        PathRow(STEP_ALONE, 1, itl=0.005, step=0.005),
        PathRow(ASYNC_ENGINE, 1, itl=0.006, step=0.005),
        PathRow(ASYNC_ENGINE, 1, itl=0.008, step=0.005),
        PathRow(ASYNC_ENGINE, 1, itl=0.007, step=0.005),
    ]
    merged = merge(rows)
    assert [r.label for r in merged] == [STEP_ALONE, ASYNC_ENGINE]
    assert merged[1].itl == pytest.approx(0.007)
    assert "1.40x" in format_rows(merged).splitlines()[-1]
