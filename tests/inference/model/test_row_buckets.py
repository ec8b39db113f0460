"""`inference.model.row_buckets`: a prepacked projection reaches oneDNN on a fixed ladder of
row counts, gives the same numbers as an unpadded call, and (seen by oneDNN's own verbose
log in a fresh process) runs no other shape however many row counts its callers send."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from inference.cpu import LinearPath
from inference.model.linear import DenseProjection
from inference.model.row_buckets import EXACT_ROWS, ROW_PIECE, bucket_rows, ladder, shapes_of

ROOT = Path(__file__).resolve().parents[3]
onednn = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN"
)


def test_the_ladder_is_short_and_wastes_under_a_quarter() -> None:
    shapes = ladder()
    assert len(shapes) == 32 and shapes[-1] == ROW_PIECE
    for rows in range(1, ROW_PIECE + 1):
        padded = bucket_rows(rows)
        assert padded in shapes and padded >= rows
        if rows <= EXACT_ROWS:
            assert padded == rows  # decode batches are not padded
        else:
            assert (padded - rows) / rows < 0.25
    with pytest.raises(ValueError):
        bucket_rows(ROW_PIECE + 1)
    assert shapes_of(1300) == {ROW_PIECE, bucket_rows(1300 - 2 * ROW_PIECE)}
    assert shapes_of(1024) == {ROW_PIECE} and shapes_of(0) == set()


@onednn
@pytest.mark.parametrize("rows", [1, 7, 9, 33, 300, 512, 513, 1300])
def test_padded_and_pieced_calls_give_the_unpadded_result(rows: int) -> None:
    generator = torch.Generator().manual_seed(rows)
    weight = torch.randn(96, 64, generator=generator)
    bias = torch.randn(96, generator=generator)
    x = torch.randn(rows, 64, generator=generator)
    other = torch.randn(rows, 96, generator=generator)
    projection = DenseProjection(weight, bias, LinearPath.ONEDNN)
    expected = F.linear(x, weight, bias)
    assert torch.allclose(projection(x), expected, atol=1e-4)
    assert torch.allclose(projection.add(x, other), expected + other, atol=1e-4)


SHAPES_SEEN = textwrap.dedent(
    """
    import random, sys, torch
    from inference.cpu import LinearPath
    from inference.model.linear import DenseProjection
    direct = sys.argv[1] == "direct"
    projection = DenseProjection(torch.randn(64, 32), None, LinearPath.ONEDNN)
    random.seed(0)
    for rows in random.sample(range(1, 1500), 120):
        x = torch.randn(rows, 32)
        projection._onednn(x, None) if direct else projection(x)
    """
)


def _rows_onednn_ran(mode: str) -> set[int]:
    run = subprocess.run(
        [sys.executable, "-c", SHAPES_SEEN, mode],
        env={"ONEDNN_VERBOSE": "1", "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [
        line for line in run.stdout.splitlines() if ",exec," in line and "inner_product" in line
    ]
    return {int(m.group(1)) for line in lines if (m := re.search(r",mb(\d+)ic32oc64,", line))}


@onednn
def test_onednn_runs_only_ladder_shapes_whatever_the_row_counts() -> None:
    direct = _rows_onednn_ran("direct")
    random.seed(0)
    assert direct == set(random.sample(range(1, 1500), 120))  # the log sees every shape
    assert _rows_onednn_ran("bucketed") <= set(ladder())
