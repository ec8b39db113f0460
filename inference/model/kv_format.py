"""How the paged KV cache stores each head's key or value row: the ``--kv-cache-dtype`` codecs.

``auto`` keeps the model's dtype. ``int8`` stores a row of ``d`` values as ``d`` int8 codes
followed by that row's scale as two bytes of float16 (symmetric, per token and KV head:
``x ~ code * scale``, ``scale = max|x| / 127``), so a row carries its own scale and every
path that moves whole blocks (prefix-cache copies, gathers) moves the scales with them; for
d = 64 a row takes 66 bytes against bf16's 128 and float32's 256. ``fp8_e4m3fn`` and
``fp8_e5m2`` (``fp8`` = e4m3fn, as TGI) store each value as one float8 byte with no scale,
saturated at the format's largest finite value; torch's CPU cannot index float8 tensors, so
they are kept as uint8 and viewed as float8 to convert. The compiled decode kernel reads every
format directly (``inference/kernels/kv_codecs.h``); the portable paths decode gathered blocks
with ``decode``. Must not import the engine or Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SCALE_BYTES = 2  # an int8 row's float16 scale
INT8_MAX = 127
MIN_SCALE = 2.0**-24  # float16's smallest positive value: an all-zero row keeps a finite scale
_FP8 = {"fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
_ALIASES = {"fp8": "fp8_e4m3fn"}


@dataclass(frozen=True)
class KVFormat:
    """One cache dtype: its name, the tensor dtype it is stored in, and the model's dtype
    (what ``decode`` returns)."""

    name: str  # "int8", "fp8_e4m3fn", "fp8_e5m2", or the model dtype's ("bfloat16", ...)
    storage: torch.dtype
    compute: torch.dtype

    @property
    def is_quantized(self) -> bool:
        return self.storage != self.compute

    @property
    def is_e5m2(self) -> bool:
        """What the compiled kernels are told of a float8 cache (uint8 either way)."""
        return self.name == "fp8_e5m2"

    def width(self, head_dim: int) -> int:
        """Elements of one stored row of ``head_dim`` values."""
        return head_dim + SCALE_BYTES if self.name == "int8" else head_dim

    def row_bytes(self, head_dim: int) -> int:
        return self.width(head_dim) * self.storage.itemsize

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., d] -> [..., width] rows as stored."""
        if self.name == "int8":
            return _int8_encode(x)
        if self.name in _FP8:
            fp8 = _FP8[self.name]
            limit = torch.finfo(fp8).max
            return x.float().clamp(-limit, limit).to(fp8).view(torch.uint8)
        return x.to(self.storage)

    def decode(self, rows: torch.Tensor, head_dim: int) -> torch.Tensor:
        """rows: [..., width'] (stored, possibly padded past ``width``) -> [..., head_dim] in
        the model's dtype."""
        if self.name == "int8":
            codes = rows[..., :head_dim].float()
            scale = rows[..., head_dim : head_dim + SCALE_BYTES].contiguous().view(torch.float16)
            return (codes * scale.float()).to(self.compute)
        if self.name in _FP8:
            return rows[..., :head_dim].contiguous().view(_FP8[self.name]).to(self.compute)
        return rows[..., :head_dim]

    def head_dim(self, width: int) -> int:
        """Values per row in a cache whose rows are ``width`` elements wide."""
        return width - SCALE_BYTES if self.name == "int8" else width

    def write(self, layer: torch.Tensor, slots: torch.Tensor, kv: torch.Tensor) -> None:
        """Store this step's K and V: layer [blocks, block_size, 2, kv_heads, width];
        slots [T]; kv [T, 2, kv_heads, head_dim(width)]."""
        width = layer.shape[-1]
        layer.view(-1, 2, layer.shape[-2], width).index_copy_(0, slots, self.encode(kv))


def _int8_encode(x: torch.Tensor) -> torch.Tensor:
    """[..., d] -> [..., d + 2] int8: the codes, then the float16 scale's two bytes."""
    x = x.float()
    scale = (x.abs().amax(-1, keepdim=True) / INT8_MAX).clamp_min(MIN_SCALE).half()
    codes = torch.round(x / scale.float()).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
    return torch.cat((codes, scale.view(torch.int8)), dim=-1)


def kv_format(name: str, model_dtype: torch.dtype) -> KVFormat:
    """The format ``--kv-cache-dtype name`` asks for with a model in ``model_dtype``."""
    name = _ALIASES.get(name, name)
    if name in ("auto", str(model_dtype).removeprefix("torch.")):  # the served name of auto
        return KVFormat(str(model_dtype).removeprefix("torch."), model_dtype, model_dtype)
    if name == "int8":
        return KVFormat(name, torch.int8, model_dtype)
    if name in _FP8:
        return KVFormat(name, torch.uint8, model_dtype)
    raise ValueError(f"unknown KV cache dtype {name!r}")


def blocks_in_same_memory(
    num_blocks: int, head_widths: list[tuple[int, int]], fmt: KVFormat
) -> int:
    """Blocks of ``fmt`` that fit in the memory ``num_blocks`` take in the model's dtype:
    head_widths lists (kv_heads, head_dim) per layer. The cache budget stays in bytes."""
    plain = kv_format("auto", fmt.compute)
    per_block = sum(h * fmt.row_bytes(d) for h, d in head_widths)
    per_block_plain = sum(h * plain.row_bytes(d) for h, d in head_widths)
    return max(1, num_blocks * per_block_plain // per_block)
