"""The 4/8-bit linears at decode-batch row counts (8 to 64), on this CPU's tier, on the AVX2
tier (x86-64-v3, no VNNI: maddubs) and on the baseline tier (the portable C++), against float
references; and the slab-by-slab float32 matmul that replaces a dense copy of the weights.

The tile kernels quantize x to int8 per block of 32, so they are compared with a reference
that rounds x the same way (equal up to the order of fp32 sums) and with plain ``x @ W.T``
(within the activation rounding); the slab matmul reads W's exact de-quantized values, so it
must equal ``x @ W.T`` up to fp32 sums.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inference import kernels
from inference.cpu import Isa, cpu_info
from inference.model.quant import QuantWeight, quantize, tile_rows

ROWS = (8, 13, 32, 64)
SHAPES = ((40, 96), (24, 160), (200, 576), (16, 1536))  # odd block and tile counts
REPO = Path(__file__).resolve().parents[3]

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")


def rounded_x(x: torch.Tensor) -> torch.Tensor:
    """x as the kernels round it: int8 per block of 32, scale max|x| / 127."""
    blocks = x.reshape(x.shape[0], -1, 32)
    amax = blocks.abs().amax(-1, keepdim=True)
    inverse = torch.where(amax > 0, torch.full_like(amax, 127) / amax, torch.zeros_like(amax))
    return ((blocks * inverse).round() * (amax / 127)).reshape(x.shape)


def relative(out: torch.Tensor, expected: torch.Tensor) -> float:
    return float((out - expected).norm() / expected.norm())


def tiled_product(w: QuantWeight, x: torch.Tensor) -> torch.Tensor:
    t = tile_rows(w)
    op = kernels.q4_linear_tiled if w.bits == 4 else kernels.q8_linear_tiled
    return op(x, *t.tensors)


def slab_product(w: QuantWeight, x: torch.Tensor) -> torch.Tensor:
    t = tile_rows(w)
    op = kernels.q4_linear_slabs if w.bits == 4 else kernels.q8_linear_slabs
    return op(x, *t.tensors)


def worst_errors() -> dict[str, float]:
    """The largest relative error of each comparison over rows, formats and shapes (run in
    this process, or in one forced to another tier)."""
    gen = torch.Generator().manual_seed(28)
    worst = {"tiles_vs_rounded_x": 0.0, "tiles_vs_float": 0.0, "slabs_vs_float": 0.0}
    for n, k in SHAPES:
        for bits in (4, 8):
            w = quantize(torch.randn(n, k, generator=gen) * 0.05, bits)
            dense = w.dequantize()
            for rows in ROWS:
                x = torch.randn(rows, k, generator=gen) + 0.5  # a mean: q4's m term matters
                tiles, slabs = tiled_product(w, x), slab_product(w, x)
                assert tiles.shape == slabs.shape == (rows, n)
                errors = {
                    "tiles_vs_rounded_x": relative(tiles, rounded_x(x) @ dense.T),
                    "tiles_vs_float": relative(tiles, x @ dense.T),
                    "slabs_vs_float": relative(slabs, x @ dense.T),
                }
                worst = {key: max(worst[key], errors[key]) for key in worst}
    return worst


def assert_within_bounds(worst: dict[str, float]) -> None:
    assert worst["tiles_vs_rounded_x"] < 1e-5  # the integer dots are exact: fp32 sums only
    assert worst["tiles_vs_float"] < 1e-2  # the int8 rounding of x
    assert worst["slabs_vs_float"] < 1e-5


@needs_kernel
def test_tiles_and_slabs_match_float_references_at_batch_rows():
    assert_within_bounds(worst_errors())


@needs_kernel
def test_slabs_cover_weights_larger_than_one_slab_and_keep_empty_batches():
    gen = torch.Generator().manual_seed(1)
    w = quantize(torch.randn(4104, 576, generator=gen) * 0.05, 4)  # > 1 MB of float32: 3 slabs
    x = torch.randn(9, 576, generator=gen)
    assert relative(slab_product(w, x), x @ w.dequantize().T) < 1e-5
    assert slab_product(w, x[:0]).shape == (0, 4104)


@needs_kernel
def test_slabs_reject_what_they_cannot_read():
    t = tile_rows(quantize(torch.randn(16, 64), 4))
    with pytest.raises(RuntimeError, match="x must be float32"):
        kernels.q4_linear_slabs(torch.randn(2, 64).bfloat16(), *t.tensors)
    with pytest.raises(RuntimeError, match="features"):
        kernels.q4_linear_slabs(torch.randn(2, 96), *t.tensors)
    with pytest.raises(RuntimeError, match="qs must be"):
        kernels.q8_linear_slabs(torch.randn(2, 64), *t.tensors[:2])


PROBE = (
    "import json; from inference import kernels; "
    "from tests.inference.kernels.test_quant_batches import worst_errors; "
    "assert kernels.available(); "
    "print(json.dumps({'path': kernels.quant_kernel_path(), **worst_errors()}))"
)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a build per tier: minutes on two busy cores
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 tiers")
@pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")
@pytest.mark.skipif(cpu_info().hardware_isa < Isa.AVX2, reason="the CPU has no AVX2")
@pytest.mark.parametrize("tier,path", [("avx2", "avx2"), ("baseline", "portable")])
def test_batch_rows_on_the_avx2_and_baseline_tiers(tier, path):
    env = {**os.environ, "INFERENCE_CPU_ISA": tier, "PYTHONPATH": str(REPO)}
    env["INFERENCE_KERNELS_BUILD_WAIT"] = "1200"  # another process may be building this tier
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("path") == path
    assert_within_bounds(result)
