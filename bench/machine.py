"""What the CPU offers, printed above the tables: the same numbers mean little on another ISA.

Which vector extensions exist decides which kernels every server can use (llama.cpp is built
with `-march=native`; torch picks its kernels by `get_cpu_capability()`).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# /proc/cpuinfo flag -> the name the targets use
X86_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX512-BF16",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}
# `bench --cpu-tier`: the environment that caps every process of the run (this server's
# kernels through INFERENCE_CPU_ISA, torch's own through ATEN_CPU_CAPABILITY, oneDNN and MKL) at
# one tier, so that a newer CPU measures the code an older one runs; llama-server is built for
# the same tier (bench.llama_cpp.TIER_FLAGS). Memory bandwidth and clocks stay this machine's.
CPU_TIER_ENV: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {
        "INFERENCE_CPU_ISA": "avx2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
}
ARM_FLAGS = {"asimd": "NEON", "sve": "SVE", "sve2": "SVE2", "bf16": "BF16", "i8mm": "I8MM"}


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """The CPU's model name and its flags (x86 `flags`, aarch64 `Features`)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        text = path.read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model Name", "Hardware") and value.strip():
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return name, flags


def torch_capability() -> str:
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except (ImportError, AttributeError):
        return "unknown"


def isa_line() -> str:
    name, flags = cpu_info()
    table = ARM_FLAGS if platform.machine() in ("aarch64", "arm64") else X86_FLAGS
    present = [label for flag, label in table.items() if flag in flags]
    absent = [label for flag, label in table.items() if flag not in flags]
    lacks = f"; lacks {', '.join(absent)}" if absent else ""
    line = (
        f"CPU: {name} ({platform.machine()}); has {', '.join(present) or 'none'}{lacks}; "
        f"torch CPU capability {torch_capability()}"
    )
    if forced := os.environ.get("INFERENCE_CPU_ISA"):
        line += f"; every server capped at {forced.upper()} (--cpu-tier / INFERENCE_CPU_ISA)"
    return line


def apply_cpu_tier(tier: str) -> None:
    """Cap this process and every server it starts at `tier` (see CPU_TIER_ENV)."""
    if tier not in CPU_TIER_ENV:
        raise ValueError(f"unknown CPU tier {tier!r}: expected one of {', '.join(CPU_TIER_ENV)}")
    os.environ.update(CPU_TIER_ENV[tier])
