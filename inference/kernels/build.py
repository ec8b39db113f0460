"""Building and loading the compiled kernels: sources, compiler flags, cache directory, lock.

One extension holds every op (``SOURCES``), built once per machine and CPU tier with the
machine's C++ compiler and cached by torch. Nothing depends on the build succeeding, nor waits
on it forever: ``load`` returns False (with the reason logged) where there is no toolchain or
``INFERENCE_KERNELS=0``, a build lock left by a crashed build is cleared, and another live
build is waited on for ``INFERENCE_KERNELS_BUILD_WAIT`` seconds at most (``build_lock``).
The ops' Python API lives in ``inference.kernels``. Must not import the engine, the scheduler,
the models or Django.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from inference.cpu import CpuInfo, Isa, cpu_info

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
# One extension, one build: the attention and layer ops, then the quantized linears (their
# kernels by layout, the ops that register them, and the slab-by-slab float32 matmul).
SOURCES = tuple(
    HERE / name
    for name in (
        "paged_decode.cpp",
        "decode_layer.cpp",
        "layer_ops.cpp",
        "quant_rows.cpp",
        "quant_tiles.cpp",
        "quant_ops.cpp",
        "quant_dense.cpp",
    )
)
# Headers the sources include: torch rebuilds when sources or flags change, not headers, so
# their hash is passed as a flag.
HEADERS = (HERE / "kernels.h", HERE / "kv_codecs.h", HERE / "quant_common.h")
CFLAGS = ["-O3", "-ffast-math", "-fno-finite-math-only", "-fopenmp"]
# The instructions each x86 tier compiles for: what CPUID reports (or INFERENCE_CPU_ISA
# forces), not what the compiler sees, so an emulated or forced tier gets exactly its own
# SIMD path; -mtune=native only schedules for the host.
TIER_ARCH = {
    Isa.BASELINE: ["-march=x86-64"],
    Isa.AVX2: ["-march=x86-64-v3"],
    Isa.AVX512: ["-march=x86-64-v4"],
    Isa.AVX512_BF16: ["-march=x86-64-v4", "-mavx512vnni", "-mavx512bf16"],
    Isa.AMX: ["-march=x86-64-v4", "-mavx512vnni", "-mavx512bf16"],
}

DEFAULT_BUILD_WAIT_S = 300.0  # a build takes about a minute on 2 cores
BUILD_LOCK = "inference-build.lock"
TORCH_BATON = "lock"  # torch.utils.file_baton.FileBaton's file in the build directory


def arch_flags(info: CpuInfo) -> list[str]:
    """Compile for this CPU's tier (aarch64: for this CPU)."""
    if info.arch.lower() in ("aarch64", "arm64") or info.isa not in TIER_ARCH:
        return ["-mcpu=native"] if info.arch.lower() in ("aarch64", "arm64") else []
    return [*TIER_ARCH[info.isa], "-mtune=native"]


def extension_name(info: CpuInfo) -> str:
    """One build per tier, so processes forced to different tiers, or hosts of different
    tiers sharing a torch-extensions cache, never load each other's machine code."""
    return f"inference_kernels_{info.isa.name.lower()}"


def build_directory(info: CpuInfo) -> Path:
    """Where torch builds (and caches) this tier's extension (torch's own rule, private)."""
    from torch.utils import cpp_extension

    return Path(cpp_extension._get_build_directory(extension_name(info), verbose=False))


def build_wait_s() -> float:
    """How long to wait for another process's build (INFERENCE_KERNELS_BUILD_WAIT seconds)."""
    return float(os.environ.get("INFERENCE_KERNELS_BUILD_WAIT") or DEFAULT_BUILD_WAIT_S)


@contextlib.contextmanager
def build_lock(build_dir: Path, wait_s: float) -> Iterator[bool]:
    """Hold the build directory exclusively; yields False if another holder kept it `wait_s`.

    NOTE: torch's own lock is a file created with O_EXCL and waited on forever: a build that
    dies leaves it behind and every later start hangs. This one is an flock, which the kernel
    drops when its holder dies, so it cannot go stale, and it is waited on for a bounded time.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): torch's lock alone, as before
        yield True
        return
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / BUILD_LOCK, "a") as handle:
        deadline = time.monotonic() + wait_s
        waiting_logged = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                if not waiting_logged:
                    logger.info("Waiting for another process to finish building the CPU kernels")
                    waiting_logged = True
                time.sleep(0.1)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clear_stale_baton(build_dir: Path) -> None:
    """Under `build_lock` no other build runs, so torch's lock file is left by one that died."""
    baton = build_dir / TORCH_BATON
    if baton.exists():
        logger.warning("Removing a stale CPU-kernel build lock (its build died): %s", baton)
        baton.unlink(missing_ok=True)


def headers_hash() -> str:
    """A short hash of every header, so that editing one rebuilds the extension."""
    digest = hashlib.sha256()
    for header in HEADERS:
        digest.update(header.read_bytes())
    return digest.hexdigest()[:12]


def has_toolchain() -> bool:
    """True when torch's builder finds ``ninja`` and the C++ compiler (the virtualenv's
    ``ninja`` lives beside python, so that directory joins PATH first)."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    compiler = os.environ.get("CXX", "c++")
    return shutil.which("ninja") is not None and shutil.which(compiler) is not None


def load() -> bool:
    """Build (first time) and load the kernels; False, with the reason logged, if impossible."""
    if os.environ.get("INFERENCE_KERNELS", "1") == "0":
        return False
    if not has_toolchain():
        logger.info("No C++ toolchain (c++ and ninja): using the portable attention path")
        return False
    try:
        from torch.utils import cpp_extension

        started = time.perf_counter()
        info = cpu_info()
        build_dir, wait_s = build_directory(info), build_wait_s()
        with build_lock(build_dir, wait_s) as acquired:
            if not acquired:
                logger.warning(
                    "Another process has been building the CPU kernels in %s for over %.0f s: "
                    "using the portable path",
                    build_dir,
                    wait_s,
                )
                return False
            clear_stale_baton(build_dir)
            cpp_extension.load(
                name=extension_name(info),
                sources=[str(path) for path in SOURCES],
                extra_cflags=[*CFLAGS, *arch_flags(info), f"-DKERNELS_H={headers_hash()}"],
                extra_include_paths=[str(HERE)],
                extra_ldflags=["-fopenmp"],
                build_directory=str(build_dir),
                is_python_module=False,
                verbose=False,
            )
    except Exception as exc:  # a failed build must never stop the server
        logger.warning("Could not build the CPU kernels (%s): using the portable path", exc)
        return False
    logger.info(
        "CPU kernels ready in %.1f s (%s, %s)",
        time.perf_counter() - started,
        " ".join(arch_flags(info)),
        torch.ops.inference_kernels.quant_linear_path(),
    )
    return True
