"""A step's rows go through oneDNN in a few fixed shapes, so its caches stop growing.

oneDNN builds (JIT-compiles) a primitive for every new number of rows a prepacked projection
is called with, and keeps it in an LRU (``inference.memory`` caps it at 256). A server that
runs steps of ever new token counts (prompt chunks, chunks beside decodes, routed expert
rows) evicts and rebuilds primitives forever, and the freed kernels leave holes in glibc's
heap that it keeps: resident memory climbs by some 0.5 MB a minute under steady traffic.

So a projection is computed on rows padded to a fixed ladder: the counts up to
``EXACT_ROWS`` as they are (decode batches, where bytes and not rows decide), then four sizes
per doubling up to ``ROW_PIECE`` (under a quarter of zero rows, 8% on average),
and a larger step in pieces of ``ROW_PIECE`` rows, its last piece padded the same way.
``ladder()`` is every shape there can be: 32, so 32 primitives per projection at most.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

EXACT_ROWS = 8
ROW_PIECE = 512
STEPS_PER_DOUBLING = 4

RowsFn = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


def bucket_rows(rows: int) -> int:
    """The row count a call of ``rows`` rows (1..ROW_PIECE) is padded to."""
    if not 1 <= rows <= ROW_PIECE:
        raise ValueError(f"rows must be in 1..{ROW_PIECE}, got {rows}")
    if rows <= EXACT_ROWS:
        return rows
    base = 1 << ((rows - 1).bit_length() - 1)  # base < rows <= 2 * base
    step = base // STEPS_PER_DOUBLING
    return -(-rows // step) * step


def ladder() -> list[int]:
    """Every row count a projection is ever called with."""
    return sorted({bucket_rows(rows) for rows in range(1, ROW_PIECE + 1)})


def shapes_of(rows: int) -> set[int]:
    """The row counts a call of ``rows`` rows reaches oneDNN with (its pieces, padded)."""
    if rows <= 0:
        return set()
    full, rest = divmod(rows, ROW_PIECE)
    return ({ROW_PIECE} if full else set()) | ({bucket_rows(rest)} if rest else set())


def _pad(t: torch.Tensor, rows: int) -> torch.Tensor:
    padded = t.new_zeros((rows, t.shape[1]))
    padded[: t.shape[0]] = t
    return padded


def in_fixed_shapes(fn: RowsFn, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
    """``fn(x, other)`` (x: [rows, K]; other: [rows, N] or None) computed on ladder shapes
    only: in pieces of ``ROW_PIECE`` rows, a short piece padded with zero rows (whose outputs
    are dropped)."""
    rows = x.shape[0]
    if rows > ROW_PIECE:
        pieces = [
            in_fixed_shapes(
                fn,
                x[start : start + ROW_PIECE],
                None if other is None else other[start : start + ROW_PIECE],
            )
            for start in range(0, rows, ROW_PIECE)
        ]
        return torch.cat(pieces)
    if rows == 0:
        return fn(x, other)
    padded = bucket_rows(rows)
    if padded == rows:
        return fn(x, other)
    out = fn(_pad(x, padded), None if other is None else _pad(other, padded))
    return out[:rows]
