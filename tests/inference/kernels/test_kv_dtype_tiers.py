"""The quantized-KV decode kernel at the lower CPU tiers: built for AVX2 (x86-64-v3) and for
the baseline (x86-64), each in a process forced to that tier, reading int8 and float8 caches
as the portable path decodes them."""

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
import torch.nn.functional as F
from inference import kernels
from inference.cpu import cpu_info
from inference.model.kv_format import kv_format
ok = kernels.available()
gen = torch.Generator().manual_seed(0)
kv = torch.randn(40, 16, 2, 3, 64, generator=gen)
q = torch.randn(4, 9, 64, generator=gen)
tables = torch.randperm(40, generator=gen)[:32].view(4, 8)
lens = torch.tensor([1, 30, 77, 128])
diffs = {}
for name in ("int8", "fp8_e4m3fn", "fp8_e5m2"):
    fmt = kv_format(name, torch.float32)
    stored = fmt.encode(kv)
    out = kernels.paged_decode_attention(q, stored, tables, lens, 0.125, e5m2=fmt.is_e5m2)
    values = fmt.decode(stored, 64)
    worst = 0.0
    for i in range(4):
        ctx = values[tables[i]].flatten(0, 1)[: int(lens[i])]
        k, v = ctx[:, 0].transpose(0, 1), ctx[:, 1].transpose(0, 1)
        ref = F.scaled_dot_product_attention(q[i].unsqueeze(1), k, v, enable_gqa=True, scale=0.125)
        worst = max(worst, float((out[i] - ref.squeeze(1)).abs().max()))
    diffs[name] = worst
print(json.dumps({"available": ok, "isa": cpu_info().isa.name, "diffs": diffs}))
"""


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 tiers")
@pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")
@pytest.mark.parametrize("tier,isa", [("avx2", "AVX2"), ("baseline", "BASELINE")])
def test_quantized_cache_kernel_at_the_lower_tiers(tier, isa):
    if isa == "AVX2" and cpu_info().hardware_isa < Isa.AVX2:
        pytest.skip("the CPU has no AVX2")
    env = {**os.environ, "INFERENCE_CPU_ISA": tier}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["available"] and result["isa"] == isa
    assert all(diff < 1e-5 for diff in result["diffs"].values()), result["diffs"]
