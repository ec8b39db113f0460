"""The compiled q4/q8 linear kernels against float matmuls over the dequantized weights.

The kernels quantize x to int8 per block of 32, so they are compared twice: with a reference
that quantizes x the same way (equal up to fp32 rounding: the integer dot products match
exactly), and with plain ``x @ W.T`` (within the activation rounding). Both the SIMD path
this machine compiled and the portable path are checked.
"""

from __future__ import annotations

import pytest
import torch

from inference import kernels
from inference.model.quant import Q4Weight, Q8Weight, tile_rows

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")
PATHS = pytest.mark.parametrize("portable", [False, True], ids=["simd", "portable"])
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
SHAPES = pytest.mark.parametrize(
    "n,k",
    [(13, 32), (37, 96), (200, 576), (61, 1536), (44, 160)],  # 1, 3, 18, 48 and 5 blocks
    ids=str,
)
ROWS = pytest.mark.parametrize("rows", [1, 3, 16])


def make_q4(n: int, k: int, gen: torch.Generator):
    """Random weights in the q4 format -> (qs, d, m, dequantized fp32 [n, k])."""
    w = torch.randn(n, k // 32, 32, generator=gen)
    lo, hi = w.amin(-1), w.amax(-1)
    d, m = ((hi - lo) / 15).half(), lo.half()
    scaled = (w - m.float()[..., None]) / d.float()[..., None]
    nibbles = scaled.round().clamp(0, 15).to(torch.uint8)
    qs = (nibbles[..., :16] | (nibbles[..., 16:] << 4)).reshape(n, k // 2)
    dequantized = d.float()[..., None] * nibbles.float() + m.float()[..., None]
    return qs, d, m, dequantized.reshape(n, k)


def make_q8(n: int, k: int, gen: torch.Generator):
    """Random weights in the q8 format -> (qs, d, dequantized fp32 [n, k]); -128 included."""
    w = torch.randn(n, k // 32, 32, generator=gen)
    d = (w.abs().amax(-1) / 127).half()
    q = (w / d.float()[..., None]).round().clamp(-128, 127).to(torch.int8)
    q[0, 0, :4] = torch.tensor([-128, 127, -128, 0], dtype=torch.int8)
    dequantized = d.float()[..., None] * q.float()
    return q.reshape(n, k), d, dequantized.reshape(n, k)


def quantize_x(x: torch.Tensor) -> torch.Tensor:
    """x rounded as the kernels round it: int8 per block of 32, scale max|x| / 127."""
    blocks = x.float().reshape(x.shape[0], -1, 32)
    amax = blocks.abs().amax(-1, keepdim=True)
    # A true division: `127 / amax` would be 127 * (1 / amax), which rounds differently.
    inverse = torch.where(amax > 0, torch.full_like(amax, 127) / amax, torch.zeros_like(amax))
    return ((blocks * inverse).round() * (amax / 127)).reshape(x.shape)


def relative_error(out: torch.Tensor, expected: torch.Tensor) -> float:
    return float((out.float() - expected).norm() / expected.norm())


def check(out, x, dequantized, dtype, rows, n):
    assert out.dtype == dtype and out.shape == (rows, n)
    exact = quantize_x(x) @ dequantized.T
    # fp32: only the order of the fp32 sums differs; bf16: the output's own rounding.
    assert relative_error(out, exact) < (1e-5 if dtype == torch.float32 else 4e-3)
    assert relative_error(out, x.float() @ dequantized.T) < 1e-2


@needs_kernel
@PATHS
@DTYPES
@SHAPES
@ROWS
def test_q4_linear_matches_the_dequantized_matmul(portable, dtype, n, k, rows):
    gen = torch.Generator().manual_seed(n * k + rows)
    qs, d, m, dequantized = make_q4(n, k, gen)
    x = (torch.randn(rows, k, generator=gen) + 0.5).to(dtype)  # a mean: the m term matters
    out = kernels.q4_linear(x, qs, d, m, portable=portable)
    check(out, x, dequantized, dtype, rows, n)


@needs_kernel
@PATHS
@DTYPES
@SHAPES
@ROWS
def test_q8_linear_matches_the_dequantized_matmul(portable, dtype, n, k, rows):
    gen = torch.Generator().manual_seed(n * k + rows + 1)
    qs, d, dequantized = make_q8(n, k, gen)
    x = (torch.randn(rows, k, generator=gen) + 0.5).to(dtype)
    out = kernels.q8_linear(x, qs, d, portable=portable)
    check(out, x, dequantized, dtype, rows, n)


@needs_kernel
def test_simd_and_portable_paths_agree_and_rows_do_not_interact():
    gen = torch.Generator().manual_seed(7)
    qs, d, m, _ = make_q4(300, 576, gen)
    qs8, d8, _ = make_q8(300, 576, gen)
    x = torch.randn(16, 576, generator=gen)
    x[3] = 0  # an all-zero row (scale 0) next to ordinary ones
    x[5, :32] *= 1000  # one block far larger than the rest

    def q4(rows: torch.Tensor, portable: bool = False) -> torch.Tensor:
        return kernels.q4_linear(rows, qs, d, m, portable=portable)

    def q8(rows: torch.Tensor, portable: bool = False) -> torch.Tensor:
        return kernels.q8_linear(rows, qs8, d8, portable=portable)

    for run in (q4, q8):
        simd, portable = run(x), run(x, portable=True)
        assert torch.all(simd[3] == 0) and torch.all(portable[3] == 0)
        for i in range(16):  # the paths differ only in the order of their fp32 sums
            if i != 3:
                assert relative_error(simd[i], portable[i]) < 1e-5
        for i in (0, 5, 15):  # each row alone gives the same result
            torch.testing.assert_close(simd[i : i + 1], run(x[i : i + 1]), rtol=1e-6, atol=1e-5)


@needs_kernel
def test_leading_dimensions_are_kept_and_thread_count_does_not_matter():
    gen = torch.Generator().manual_seed(3)
    qs, d, m, _ = make_q4(96, 64, gen)
    x = torch.randn(2, 3, 64, generator=gen).bfloat16()
    assert kernels.q4_linear(x, qs, d, m).shape == (2, 3, 96)
    big_qs, big_d, big_m, _ = make_q4(4000, 256, gen)
    flat = torch.randn(4, 256, generator=gen)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(kernels.q4_linear(flat, big_qs, big_d, big_m))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


@needs_kernel
def test_kernel_path_is_reported():
    assert kernels.quant_kernel_path() in ("avx512-vnni", "avx2-vnni", "avx2", "portable")


def _q4_args():
    gen = torch.Generator().manual_seed(0)
    qs, d, m, _ = make_q4(8, 64, gen)
    return torch.randn(2, 64), qs, d, m


@needs_kernel
@pytest.mark.parametrize(
    "change,message",
    [
        (lambda x, qs, d, m: (x.half(), qs, d, m), "x must be float32 or bfloat16"),
        (lambda x, qs, d, m: (x[:, :32], qs, d, m), "x has 32 features, the weights 64"),
        (lambda x, qs, d, m: (x, qs.view(torch.int8), d, m), "qs must be uint8"),
        (lambda x, qs, d, m: (x, qs, d.float(), m), "d must be float16"),
        (lambda x, qs, d, m: (x, qs, d[:4], m), "d must be a contiguous"),
        (lambda x, qs, d, m: (x, qs, d, m[:, :1]), "m must be a contiguous float16"),
        (lambda x, qs, d, m: (x[:, :48], qs[:, :24].contiguous(), d, m), "multiple of 32"),
        (lambda x, qs, d, m: (x, qs.t(), d, m), "qs must be a contiguous"),
    ],
    ids=["x-float16", "x-features", "qs-int8", "d-float32", "d-rows", "m-shape", "k-48", "qs-t"],
)
def test_q4_linear_rejects_bad_inputs(change, message):
    x, qs, d, m = change(*_q4_args())
    with pytest.raises(RuntimeError, match=message):
        torch.ops.inference_kernels.q4_linear(x, qs, d, m)


@needs_kernel
def test_q8_linear_rejects_bad_inputs():
    gen = torch.Generator().manual_seed(0)
    qs, d, _ = make_q8(8, 64, gen)
    x = torch.randn(2, 64)
    with pytest.raises(RuntimeError, match="qs must be int8"):
        kernels.q8_linear(x, qs.view(torch.uint8), d)
    with pytest.raises(RuntimeError, match="d must be a contiguous"):
        kernels.q8_linear(x, qs, d[:, :1])
    with pytest.raises(RuntimeError, match="x must be \\[M, K\\]"):
        torch.ops.inference_kernels.q8_linear(x[None], qs, d)


# --- Tiles of 8 rows -------------------------------------------------------------------------

TILED_SHAPES = pytest.mark.parametrize(
    "n,k", [(8, 32), (40, 96), (200, 576), (64, 1536), (48, 160)], ids=str
)
TILED_ROWS = pytest.mark.parametrize("rows", [1, 4, 5, 9, 33])  # around 4 and 8 rows a pass


@needs_kernel
@PATHS
@DTYPES
@TILED_SHAPES
@TILED_ROWS
def test_tiled_q4_linear_matches_the_dequantized_matmul(portable, dtype, n, k, rows):
    gen = torch.Generator().manual_seed(n * k + rows + 2)
    qs, d, m, dequantized = make_q4(n, k, gen)
    tiled = tile_rows(Q4Weight(qs, d, m))
    x = (torch.randn(rows, k, generator=gen) + 0.5).to(dtype)
    out = kernels.q4_linear_tiled(x, tiled.qs, tiled.d, tiled.m, portable=portable)
    check(out, x, dequantized, dtype, rows, n)


@needs_kernel
@PATHS
@DTYPES
@TILED_SHAPES
@TILED_ROWS
def test_tiled_q8_linear_matches_the_dequantized_matmul(portable, dtype, n, k, rows):
    gen = torch.Generator().manual_seed(n * k + rows + 3)
    qs, d, dequantized = make_q8(n, k, gen)
    tiled = tile_rows(Q8Weight(qs, d))
    x = (torch.randn(rows, k, generator=gen) + 0.5).to(dtype)
    out = kernels.q8_linear_tiled(x, tiled.qs, tiled.d, portable=portable)
    check(out, x, dequantized, dtype, rows, n)


@needs_kernel
def test_tiled_and_row_layouts_give_the_same_outputs_row_by_row():
    gen = torch.Generator().manual_seed(11)
    q4 = Q4Weight(*make_q4(96, 576, gen)[:3])
    q8 = Q8Weight(*make_q8(96, 576, gen)[:2])
    x = torch.randn(12, 576, generator=gen)
    x[2] = 0
    x[7, :32] *= 1000
    t4, t8 = tile_rows(q4), tile_rows(q8)
    cases = [
        (kernels.q4_linear(x, q4.qs, q4.d, q4.m), kernels.q4_linear_tiled, t4.tensors),
        (kernels.q8_linear(x, q8.qs, q8.d), kernels.q8_linear_tiled, t8.tensors),
    ]
    for by_rows, tiled_linear, tensors in cases:
        tiles = tiled_linear(x, *tensors)
        assert torch.all(tiles[2] == 0)
        torch.testing.assert_close(tiles, by_rows, rtol=1e-5, atol=1e-4)
        for i in (0, 7, 11):  # each row alone gives the same result
            torch.testing.assert_close(tiles[i : i + 1], tiled_linear(x[i : i + 1], *tensors))


def test_tiles_hold_each_rows_bytes_once_and_refuse_ragged_rows():
    gen = torch.Generator().manual_seed(5)
    q4 = Q4Weight(*make_q4(16, 64, gen)[:3])
    tiled = tile_rows(q4)
    assert tiled.qs.shape == (2, 2, 128) and tiled.d.shape == tiled.m.shape == (2, 2, 8)
    # row 9 (tile 1, lane 1), block 1, bytes 4..7 sit in run 1 of that block
    assert torch.equal(tiled.qs[1, 1, 32 + 4 : 32 + 8], q4.qs[9, 16 + 4 : 16 + 8])
    assert tiled.d[1, 1, 1] == q4.d[9, 1] and tiled.m[0, 0, 7] == q4.m[7, 0]
    assert sorted(tiled.qs.flatten().tolist()) == sorted(q4.qs.flatten().tolist())
    with pytest.raises(ValueError, match="tiles of 8"):
        tile_rows(Q4Weight(*make_q4(12, 64, gen)[:3]))


@needs_kernel
def test_tiled_kernels_reject_row_layouts():
    gen = torch.Generator().manual_seed(0)
    qs, d, m, _ = make_q4(8, 64, gen)
    with pytest.raises(RuntimeError, match="qs must be a contiguous \\[N/8"):
        torch.ops.inference_kernels.q4_linear_tiled(torch.randn(2, 64), qs, d, m)
    tiled = tile_rows(Q8Weight(*make_q8(8, 64, gen)[:2]))
    with pytest.raises(RuntimeError, match="d must be a contiguous float16 \\[N/8, K/32, 8\\]"):
        kernels.q8_linear_tiled(torch.randn(2, 64), tiled.qs, tiled.d.view(1, 1, 16))
