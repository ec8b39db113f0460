"""The compiled CPU kernels' Python API: one function per op, and whether they are built.

``paged_decode_attention`` reads each sequence's KV blocks where they lie, where the
portable path first gathers them into a padded copy and runs SDPA with a length mask: on
this project's CPUs a batch-32 decode layer takes about a third of the time.
``q4_linear`` and ``q8_linear`` multiply by weights kept in 4 or 8 bits (blocks of 32 with
fp16 scales): at decode batch sizes a linear layer is bound by reading its weights, and these
read a quarter or half of bf16's bytes. Where no compiler is available (or
``INFERENCE_KERNELS=0``), ``available()`` is False and the model keeps the portable path.
Building, its flags and its lock live in ``inference.kernels.build``. Must not import the
engine, the scheduler or Django.
"""

from __future__ import annotations

import functools

import torch

from inference.kernels.build import (  # re-exported: callers and tests use them from here
    BUILD_LOCK,
    TORCH_BATON,
    arch_flags,
    build_directory,
    build_lock,
    load,
)

__all__ = [
    "BUILD_LOCK",
    "HEAD_DIMS",
    "MAX_GROUP",
    "TORCH_BATON",
    "arch_flags",
    "available",
    "build_directory",
    "build_lock",
    "decode_layer",
    "paged_decode_attention",
    "q4_linear",
    "q4_linear_slabs",
    "q4_linear_tiled",
    "q8_linear",
    "q8_linear_slabs",
    "q8_linear_tiled",
    "quant_kernel_path",
    "rms_norm",
    "rope_",
    "silu_mul",
    "supports",
]

HEAD_DIMS = (16, 64, 128)  # compiled head sizes (16: the tests' tiny model)
MAX_GROUP = 8  # query heads per KV head, compiled 1..8


@functools.cache
def available() -> bool:
    """Build (first time) and load the kernels once per process; False if impossible."""
    return load()


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
    *,
    e5m2: bool = False,
) -> torch.Tensor:
    """q: [n, heads, d]; kv_layer: [blocks, block_size, 2, kv_heads, w] as
    ``inference.model.kv_format`` stores it (int8 rows with their scale, float8 as uint8:
    ``e5m2`` picks which float8); block_tables: [n, max_blocks] int64; context_lens: [n] int64
    -> [n, heads, d] in q's dtype (a quantized cache is read with float32 queries)."""
    if kv_layer.dtype in (torch.int8, torch.uint8) and q.dtype != torch.float32:
        out = torch.ops.inference_kernels.paged_decode(
            q.float(), kv_layer, block_tables, context_lens, scale, e5m2
        )
        return out.to(q.dtype)
    return torch.ops.inference_kernels.paged_decode(
        q, kv_layer, block_tables, context_lens, scale, e5m2
    )


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


def q4_linear_slabs(
    x: torch.Tensor, qs: torch.Tensor, d: torch.Tensor, m: torch.Tensor
) -> torch.Tensor:
    """``q4_linear_tiled``'s product as a float32 matmul: x [M, K] float32, W de-quantized
    one slab of about 1 MB at a time (quant_dense.cpp), for the batches where the float matmul
    beats the int8 kernels, without keeping a float copy of W."""
    return torch.ops.inference_kernels.q4_linear_slabs(x, qs, d, m)


def q8_linear_slabs(x: torch.Tensor, qs: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``q4_linear_slabs`` for 8-bit tiles."""
    return torch.ops.inference_kernels.q8_linear_slabs(x, qs, d)


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
