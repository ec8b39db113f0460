"""What this CPU computes fast, detected once, and which linear path each dtype takes on it.

At batch 1 a decode step reads every weight once, so the linear path decides latency: oneDNN's
prepacked bf16 needs AVX-512 (BW/VL/DQ) or AVX-NE-CONVERT on x86 and fails at load anywhere
else, so every choice here falls back to a path that runs on any x86-64 or aarch64 CPU.

``INFERENCE_CPU_ISA`` (``amx``, ``avx512_bf16``, ``avx512``, ``avx2``, ``baseline``) caps the
tier the server believes it has: tests force the "no AVX-512" path on any machine with it.
It can only lower what the hardware has, never raise it.

It also owns the threads that compute: one intra-op thread per physical core for the engine's
thread, and the release of idle OpenMP pools that would otherwise slow every step.
Must not import the engine, the model or Django.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import torch

ISA_ENV = "INFERENCE_CPU_ISA"


class Isa(IntEnum):
    """x86 tiers in increasing order (aarch64 reports BASELINE or NEON)."""

    BASELINE = 0
    NEON = 1
    AVX2 = 2
    AVX512 = 3
    AVX512_BF16 = 4
    AMX = 5


class LinearPath:
    """How a projection computes ``x @ W.T`` (the names appear in logs and ``/info``)."""

    ONEDNN = "onednn"  # weight reordered once into oneDNN's blocked layout; fuses epilogues
    DENSE = "dense"  # torch.nn.functional.linear on the stored weight: runs everywhere


@dataclass(frozen=True)
class CpuInfo:
    arch: str
    model_name: str
    hardware_isa: Isa  # what the CPU has
    isa: Isa  # what the server uses: hardware_isa, capped by INFERENCE_CPU_ISA
    vnni: bool  # int8 dot products (AVX512-VNNI / AVX-VNNI)

    @property
    def forced(self) -> bool:
        return self.isa != self.hardware_isa

    def onednn_linear(self, dtype: torch.dtype) -> bool:
        """True when oneDNN's prepacked linear runs ``dtype`` on this CPU."""
        if dtype == torch.float32:
            return _onednn_runs(dtype)
        if dtype == torch.bfloat16:
            # torch's own check (AVX-512 BW/VL/DQ or AVX-NE-CONVERT) within the cap, then a run
            return (
                self.isa >= Isa.AVX512
                and torch.ops.mkldnn._is_mkldnn_bf16_supported()
                and _onednn_runs(dtype)
            )
        return False  # fp16: oneDNN's path needs AVX512-FP16/AMX-FP16; F.linear is portable

    def linear_path(self, dtype: torch.dtype) -> str:
        return LinearPath.ONEDNN if self.onednn_linear(dtype) else LinearPath.DENSE

    @property
    def native_bf16(self) -> bool:
        """bf16 dot products in hardware, where bf16 weights halve the bytes at no extra cost."""
        return self.isa >= Isa.AVX512_BF16

    def describe(self) -> str:
        forced = f" (forced by {ISA_ENV}; hardware {self.hardware_isa.name})" if self.forced else ""
        return f"{self.model_name} [{self.arch}], {self.isa.name}{forced}"


@functools.cache
def _onednn_runs(dtype: torch.dtype) -> bool:
    """Prepack and run one small linear: a build or CPU where it fails takes the dense path."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        weight = torch.ops.mkldnn._reorder_linear_weight(torch.ones(16, 32, dtype=dtype))
        out = torch.ops.mkldnn._linear_pointwise(
            torch.ones(2, 32, dtype=dtype), weight, None, "none", [], ""
        )
    except (RuntimeError, AttributeError):
        return False
    return bool((out.float() == 32).all())


def _hardware_isa() -> Isa:
    """The best tier the CPU reports through CPUID (torch's cpuinfo), not /proc/cpuinfo,
    so an emulated CPU reports what it emulates."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return Isa.NEON
    cpu = torch.cpu
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return Isa.AMX
    if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
        return Isa.AVX512_BF16
    if getattr(cpu, "_is_avx512_supported", lambda: False)():
        return Isa.AVX512
    if getattr(cpu, "_is_avx2_supported", lambda: False)():
        return Isa.AVX2
    return Isa.BASELINE


def _model_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    for line in text.splitlines():
        if line.startswith(("model name", "Model", "Hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def parse_isa(name: str) -> Isa:
    try:
        return Isa[name.strip().upper()]
    except KeyError:
        choices = ", ".join(i.name.lower() for i in Isa)
        raise ValueError(f"{ISA_ENV}={name!r}: expected one of {choices}") from None


@functools.cache
def cpu_info() -> CpuInfo:
    """This process's CPU, read once (``cpu_info.cache_clear()`` after changing the env)."""
    hardware = _hardware_isa()
    isa = hardware
    if forced := os.environ.get(ISA_ENV, "").strip():
        isa = min(hardware, parse_isa(forced))
    vnni = bool(getattr(torch.cpu, "_is_vnni_supported", lambda: False)()) and isa >= Isa.AVX2
    return CpuInfo(platform.machine(), _model_name(), hardware, isa, vnni)


def physical_cpu_count() -> int:
    """Physical cores available to this process (torch's best intra-op thread count on CPU)."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or 1
        logical = psutil.cpu_count(logical=True) or physical
        allowed = len(psutil.Process().cpu_affinity() or []) or logical
        return max(1, min(physical, allowed * physical // logical))
    except Exception:
        return max(1, os.cpu_count() or 1)


def release_idle_openmp_pools() -> bool:
    """Free the calling thread's idle OpenMP pool (``omp_pause_resource_all``).

    Each thread that runs a parallel op gets its own OpenMP pool, and once more OpenMP
    threads exist than cores, GNU OpenMP stops spin-waiting between parallel regions:
    every op then pays a futex wake-up (~30% slower decode steps here). Loading the model
    on the main thread leaves such a pool behind; the thread that loaded it calls this
    before the engine thread starts, so the engine's pool is the only one.
    """
    maps = Path("/proc/self/maps")
    if not maps.exists():  # not Linux: nothing known to release
        return False
    libraries = {line.split()[-1] for line in maps.read_text().splitlines() if "/" in line}
    released = False
    # Several OpenMP runtimes may be loaded (torch's and other wheels' copies): pause each.
    for path in sorted(libraries):
        if os.path.basename(path).startswith(("libgomp", "libiomp", "libomp")):
            try:
                released |= ctypes.CDLL(path).omp_pause_resource_all(2) == 0  # omp_pause_hard
            except (OSError, AttributeError):
                continue
    return released


def prepare_engine_thread(device: torch.device) -> None:
    """Set up the thread that runs every step: grad off, one intra-op thread per core."""
    torch.set_grad_enabled(False)
    if device.type == "cpu":
        torch.set_num_threads(physical_cpu_count())
