"""Compiled CPU kernels, built once per machine with its C++ compiler (cached by torch).

``paged_decode_attention`` reads each sequence's KV blocks where they lie, where the
portable path first gathers them into a padded copy and runs SDPA with a length mask: on
this project's CPUs a batch-32 decode layer takes about a third of the time.
``q4_linear`` and ``q8_linear`` multiply by weights kept in 4 or 8 bits (blocks of 32 with
fp16 scales): at decode batch sizes a linear layer is bound by reading its weights, and these
read a quarter or half of bf16's bytes. Where no
compiler is available (or ``INFERENCE_KERNELS=0``), ``available()`` is False and the model
keeps the portable path, so nothing depends on the build succeeding, nor waits on it forever:
a build lock left by a crashed build is cleared, and another live build is waited on for
``INFERENCE_KERNELS_BUILD_WAIT`` seconds at most (``build_lock``).
Must not import the engine, the scheduler or Django.
"""

from __future__ import annotations

import contextlib
import functools
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

SOURCE = Path(__file__).with_name("paged_decode.cpp")
QUANT_SOURCE = Path(__file__).with_name("quant_linear.cpp")
LAYER_SOURCE = Path(__file__).with_name("decode_layer.cpp")
OPS_SOURCE = Path(__file__).with_name("layer_ops.cpp")
SOURCES = (SOURCE, QUANT_SOURCE, LAYER_SOURCE, OPS_SOURCE)  # one extension, one build
HEADER = Path(__file__).with_name("kernels.h")
HEAD_DIMS = (16, 64, 128)  # compiled head sizes (16: the tests' tiny model)
MAX_GROUP = 8  # query heads per KV head, compiled 1..8
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


def arch_flags(info: CpuInfo) -> list[str]:
    """Compile for this CPU's tier (aarch64: for this CPU)."""
    if info.arch.lower() in ("aarch64", "arm64") or info.isa not in TIER_ARCH:
        return ["-mcpu=native"] if info.arch.lower() in ("aarch64", "arm64") else []
    return [*TIER_ARCH[info.isa], "-mtune=native"]


def extension_name(info: CpuInfo) -> str:
    """One build per tier, so processes forced to different tiers, or hosts of different
    tiers sharing a torch-extensions cache, never load each other's machine code."""
    return f"inference_kernels_{info.isa.name.lower()}"


DEFAULT_BUILD_WAIT_S = 300.0  # a build takes about a minute on 2 cores
BUILD_LOCK = "inference-build.lock"
TORCH_BATON = "lock"  # torch.utils.file_baton.FileBaton's file in the build directory


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


def _header_hash() -> str:
    import hashlib

    return hashlib.sha256(HEADER.read_bytes()).hexdigest()[:12]


@functools.cache
def available() -> bool:
    """Build (first time) and load the kernels; False, with the reason logged, if impossible."""
    if os.environ.get("INFERENCE_KERNELS", "1") == "0":
        return False
    # torch's builder runs `ninja` from PATH: the virtualenv's copy lives beside python.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if shutil.which("ninja") is None or shutil.which(os.environ.get("CXX", "c++")) is None:
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
                # torch rebuilds when sources or flags change: the header's hash is a flag
                extra_cflags=[*CFLAGS, *arch_flags(info), f"-DKERNELS_H={_header_hash()}"],
                extra_include_paths=[str(HEADER.parent)],
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


def supports(device: torch.device, dtype: torch.dtype, head_dim: int, group: int) -> bool:
    """True when ``paged_decode_attention`` runs this model's decode (and the build works)."""
    return (
        device.type == "cpu"
        and dtype in (torch.float32, torch.bfloat16)
        and head_dim in HEAD_DIMS
        and 1 <= group <= MAX_GROUP
        and available()
    )


def paged_decode_attention(
    q: torch.Tensor,
    kv_layer: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """q: [n, heads, d]; kv_layer: [blocks, block_size, 2, kv_heads, d];
    block_tables: [n, max_blocks] int64; context_lens: [n] int64 -> [n, heads, d]."""
    return torch.ops.inference_kernels.paged_decode(q, kv_layer, block_tables, context_lens, scale)


def q4_linear(
    x: torch.Tensor, qs: torch.Tensor, d: torch.Tensor, m: torch.Tensor, *, portable: bool = False
) -> torch.Tensor:
    """x @ W.T for x: [..., K] fp32 or bf16 -> [..., N] in x's dtype. W is 4-bit: qs uint8
    [N, K/2], d and m fp16 [N, K/32]; per block of 32, w = d * nibble + m, a block's 16 bytes
    holding elements 0..15 in their low nibbles and 16..31 in their high ones (GGUF's order).
    x is quantized to int8 per block of 32 on the way in. ``portable`` forces the plain C++
    path (tests compare it with the SIMD one)."""
    out = torch.ops.inference_kernels.q4_linear(x.reshape(-1, x.shape[-1]), qs, d, m, portable)
    return out.reshape(*x.shape[:-1], qs.shape[0])


def q8_linear(
    x: torch.Tensor, qs: torch.Tensor, d: torch.Tensor, *, portable: bool = False
) -> torch.Tensor:
    """x @ W.T for x: [..., K] fp32 or bf16 -> [..., N] in x's dtype. W is 8-bit: qs int8
    [N, K], d fp16 [N, K/32]; w = d * q per block of 32. As ``q4_linear`` otherwise."""
    out = torch.ops.inference_kernels.q8_linear(x.reshape(-1, x.shape[-1]), qs, d, portable)
    return out.reshape(*x.shape[:-1], qs.shape[0])


def q4_linear_tiled(
    x: torch.Tensor, qs: torch.Tensor, d: torch.Tensor, m: torch.Tensor, *, portable: bool = False
) -> torch.Tensor:
    """``q4_linear`` with W in tiles of 8 rows (``inference.model.quant.TiledWeight``): qs uint8
    [N/8, K/32, 128], d and m fp16 [N/8, K/32, 8]. 8 rows of W share each load of x."""
    out = torch.ops.inference_kernels.q4_linear_tiled(
        x.reshape(-1, x.shape[-1]), qs, d, m, portable
    )
    return out.reshape(*x.shape[:-1], qs.shape[0] * 8)


def q8_linear_tiled(
    x: torch.Tensor, qs: torch.Tensor, d: torch.Tensor, *, portable: bool = False
) -> torch.Tensor:
    """``q8_linear`` with W in tiles of 8 rows: qs int8 [N/8, K/32, 256], d fp16
    [N/8, K/32, 8]."""
    out = torch.ops.inference_kernels.q8_linear_tiled(x.reshape(-1, x.shape[-1]), qs, d, portable)
    return out.reshape(*x.shape[:-1], qs.shape[0] * 8)


def quant_kernel_path() -> str | None:
    """The path the quantized linears take here ("avx512-vnni", "avx2-vnni", "avx2" or
    "portable"), or None when the kernels are not built; for logs and benchmarks."""
    return torch.ops.inference_kernels.quant_linear_path() if available() else None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dimension in one pass (float32 statistics and scaling); x
    contiguous float32 or bfloat16, out in x's dtype (see layer_ops.cpp)."""
    return torch.ops.inference_kernels.rms_norm(x, weight, eps)


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up in one pass for gate_up [..., 2 * inter] (gate first) -> [..., inter];
    contiguous float32 or bfloat16."""
    return torch.ops.inference_kernels.silu_mul(gate_up)


def rope_(
    qkv: torch.Tensor, heads: int, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor
) -> None:
    """Rotary embedding in place on the first ``heads`` heads of qkv [T, H, d]; cos, sin:
    float32 [positions, d] with rotate_half's sign folded into sin."""
    torch.ops.inference_kernels.rope_(qkv, heads, cos, sin, positions)


def decode_layer(h: torch.Tensor, *args) -> None:
    """One decoder layer for decode rows, ``h`` updated in place (see decode_layer.cpp)."""
    torch.ops.inference_kernels.decode_layer(h, *args)
