"""The compiled kernels on an AVX2-only CPU: built for x86-64-v3 (no AVX-512 instruction
can slip in) in a process forced to that tier, and giving the portable path's (and torch's)
results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from inference import kernels
from inference.cpu import Isa, cpu_info

PROBE = """
import json, torch
from inference import kernels
from inference.model import quant
from inference.cpu import cpu_info
ok = kernels.available()
torch.manual_seed(0)
w = quant.quantize_int4(torch.randn(96, 256))
x = torch.randn(3, 256)
simd = kernels.q4_linear(x, w.qs, w.d, w.m)
portable = kernels.q4_linear(x, w.qs, w.d, w.m, portable=True)
x9 = torch.randn(9, 256)  # tiles: two passes of 4 rows and one of 1
t4, t8 = quant.tile_rows(w), quant.tile_rows(quant.quantize_int8(torch.randn(96, 256)))
tiled = [
    (op(x9, *t.tensors) - op(x9, *t.tensors, portable=True)).abs().max()
    for op, t in ((kernels.q4_linear_tiled, t4), (kernels.q8_linear_tiled, t8))
]
x5, norm, gate_up = torch.randn(5, 64), torch.rand(64), torch.randn(5, 128)
gate, up = gate_up.chunk(2, dim=-1)
qkv, angles = torch.randn(5, 3, 16), torch.rand(8, 16)
rotated = qkv.clone()
kernels.rope_(rotated, 2, angles.cos(), angles.sin(), torch.arange(5))
expected = qkv[:, :2] * angles.cos()[:5, None] + qkv[:, :2].roll(8, -1) * angles.sin()[:5, None]
layer_ops = [
    kernels.rms_norm(x5, norm, 1e-6) - torch.nn.functional.rms_norm(x5, (64,), norm, 1e-6),
    kernels.silu_mul(gate_up) - torch.nn.functional.silu(gate) * up,
    rotated[:, :2] - expected,
]
print(json.dumps({
    "available": ok,
    "isa": cpu_info().isa.name,
    "path": kernels.quant_kernel_path(),
    "flags": kernels.arch_flags(cpu_info()),
    "max_diff": float((simd - portable).abs().max()),
    "tiled_max_diff": float(max(tiled)),
    "layer_ops_max_diff": float(max(d.abs().max() for d in layer_ops)),
}))
"""


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 tiers")
@pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")
@pytest.mark.skipif(cpu_info().hardware_isa < Isa.AVX2, reason="the CPU has no AVX2")
def test_kernels_build_and_agree_on_an_avx2_only_tier():
    env = {**os.environ, "INFERENCE_CPU_ISA": "avx2"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["available"] and result["isa"] == "AVX2"
    assert result["flags"][0] == "-march=x86-64-v3"
    assert result["path"] == "avx2"
    assert result["max_diff"] < 1e-3
    assert result["tiled_max_diff"] < 1e-3
    assert result["layer_ops_max_diff"] < 1e-4  # RMSNorm, SiLU x up, rotary against torch
