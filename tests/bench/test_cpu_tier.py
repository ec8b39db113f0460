"""`python -m bench --cpu-tier avx2`: every server of the run is capped at AVX2, so a newer CPU
measures the code an AVX2-only one runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.llama_cpp import ROOT, TIER_FLAGS, tier_root
from bench.machine import CPU_TIER_ENV, apply_cpu_tier, isa_line

PROBE = """
import json, torch
from inference.cpu import cpu_info
print(json.dumps({"isa": cpu_info().isa.name,
                  "torch": torch.backends.cpu.get_cpu_capability()}))
"""


def test_every_tier_has_a_llama_cpp_build_of_its_own() -> None:
    assert set(TIER_FLAGS) == set(CPU_TIER_ENV)
    assert tier_root("native") == ROOT
    assert tier_root("avx2") != ROOT and tier_root("avx2").parent == ROOT.parent
    assert "-DGGML_NATIVE=OFF" in TIER_FLAGS["avx2"]
    with pytest.raises(ValueError, match="unknown CPU tier"):
        tier_root("avx1024")


def test_the_avx2_tier_caps_a_child_process_at_avx2() -> None:
    """What a server started under the tier's environment believes it has: our tier and
    torch's kernel dispatch are both AVX2 at most, whatever this CPU offers."""
    env = {**os.environ, **CPU_TIER_ENV["avx2"]}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["isa"] in ("AVX2", "BASELINE", "NEON")
    assert "AVX512" not in seen["torch"]


def test_apply_cpu_tier_sets_the_environment_and_the_isa_line_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in CPU_TIER_ENV["avx2"]:
        monkeypatch.delenv(name, raising=False)
    apply_cpu_tier("native")
    assert "capped" not in isa_line()
    for name in CPU_TIER_ENV["avx2"]:
        monkeypatch.setenv(name, "")  # restored by monkeypatch after the test
    apply_cpu_tier("avx2")
    assert os.environ["INFERENCE_CPU_ISA"] == "avx2"
    assert "capped at AVX2" in isa_line()
    with pytest.raises(ValueError, match="unknown CPU tier"):
        apply_cpu_tier("sse")
