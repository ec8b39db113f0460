"""4- and 8-bit weight formats: made from float weights, or taken as they are from a GGUF file.

Two formats, each blocks of 32 consecutive input features with their own float16 scale, as
the kernels of ``inference.kernels`` read them (W is [N out, K in]):

- ``Q4Weight``: w = d * q + m, q in 0..15. The 16 bytes of a block hold elements 0..15 in
  their low nibbles and 16..31 in their high nibbles (GGUF's own Q4_0/Q4_1 layout), so
  Q4_0 (m = -8 d) and Q4_1 are taken byte for byte; Q4_K's 6-bit sub-block scales and mins
  become the per-block d and m (rounded to float16, well under the 4-bit step).
- ``Q8Weight``: w = d * q, q in -127..127: GGUF's Q8_0 byte for byte.

A GGUF tensor of any other type is de-quantized and re-quantized to 8 bits.
Must not import the engine, the model code or Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BLOCK = 32


@dataclass
class Q4Weight:
    qs: torch.Tensor  # uint8 [N, K / 2]
    d: torch.Tensor  # float16 [N, K / 32]
    m: torch.Tensor  # float16 [N, K / 32]

    bits = 4

    @property
    def out_features(self) -> int:
        return self.qs.shape[0]

    @property
    def in_features(self) -> int:
        return self.qs.shape[1] * 2

    @property
    def num_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.qs, self.d, self.m))

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        n, k = self.out_features, self.in_features
        blocks = self.qs.view(n, k // BLOCK, BLOCK // 2)
        q = torch.cat((blocks & 15, blocks >> 4), dim=-1).float()  # element order in a block
        w = q * self.d.float().unsqueeze(-1) + self.m.float().unsqueeze(-1)
        return w.view(n, k).to(dtype)

    def rows(self, index: torch.Tensor) -> Q4Weight:
        return Q4Weight(self.qs[index].contiguous(), self.d[index], self.m[index])


@dataclass
class Q8Weight:
    qs: torch.Tensor  # int8 [N, K]
    d: torch.Tensor  # float16 [N, K / 32]

    bits = 8

    @property
    def out_features(self) -> int:
        return self.qs.shape[0]

    @property
    def in_features(self) -> int:
        return self.qs.shape[1]

    @property
    def num_bytes(self) -> int:
        return self.qs.numel() + self.d.numel() * 2

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        n, k = self.qs.shape
        w = self.qs.view(n, k // BLOCK, BLOCK).float() * self.d.float().unsqueeze(-1)
        return w.view(n, k).to(dtype)

    def rows(self, index: torch.Tensor) -> Q8Weight:
        return Q8Weight(self.qs[index].contiguous(), self.d[index])


QuantWeight = Q4Weight | Q8Weight


def quantizable(weight: torch.Tensor) -> bool:
    return weight.dim() == 2 and weight.shape[1] % BLOCK == 0


def quantize_int4(weight: torch.Tensor) -> Q4Weight:
    """Asymmetric 4-bit per block of 32: the block's min and max map to 0 and 15."""
    n, k = weight.shape
    w = weight.detach().float().reshape(n, k // BLOCK, BLOCK)
    lo, hi = w.amin(-1), w.amax(-1)
    d = ((hi - lo) / 15).half()
    m = lo.half()
    scale = d.float().unsqueeze(-1)
    q = torch.where(scale > 0, (w - m.float().unsqueeze(-1)) / scale.clamp_min(1e-30), 0.0)
    q = q.round().clamp(0, 15).to(torch.uint8)
    qs = q[..., :16] | (q[..., 16:] << 4)
    return Q4Weight(qs.reshape(n, k // 2).contiguous(), d, m)


def quantize_int8(weight: torch.Tensor) -> Q8Weight:
    """Symmetric 8-bit per block of 32 (absmax / 127), GGUF's Q8_0."""
    n, k = weight.shape
    w = weight.detach().float().reshape(n, k // BLOCK, BLOCK)
    d = (w.abs().amax(-1) / 127).half()
    scale = d.float().unsqueeze(-1)
    q = torch.where(scale > 0, w / scale.clamp_min(1e-30), 0.0).round().clamp(-127, 127)
    return Q8Weight(q.to(torch.int8).reshape(n, k).contiguous(), d)


def quantize(weight: torch.Tensor, bits: int) -> QuantWeight:
    return quantize_int4(weight) if bits == 4 else quantize_int8(weight)


def cat_rows(weights: list[QuantWeight]) -> QuantWeight:
    """Weights stacked along the output (fused q/k/v): one format, or all made 8-bit."""
    if len(weights) == 1:
        return weights[0]
    if all(isinstance(w, Q4Weight) for w in weights):
        return Q4Weight(
            torch.cat([w.qs for w in weights]),
            torch.cat([w.d for w in weights]),
            torch.cat([w.m for w in weights]),
        )
    eights = [w if isinstance(w, Q8Weight) else quantize_int8(w.dequantize()) for w in weights]
    return Q8Weight(torch.cat([w.qs for w in eights]), torch.cat([w.d for w in eights]))


# --- GGUF blocks, as llama.cpp writes them -------------------------------------------------


def _f16(raw: np.ndarray) -> torch.Tensor:
    """Little-endian float16 from the last axis' 2 bytes."""
    return torch.from_numpy(np.ascontiguousarray(raw).view(np.float16)[..., 0].copy())


def _q4_0(raw: np.ndarray) -> Q4Weight:
    d = _f16(raw[..., 0:2])
    qs = torch.from_numpy(raw[..., 2:18].reshape(raw.shape[0], -1).copy())
    return Q4Weight(qs, d, (d.float() * -8).half())


def _q4_1(raw: np.ndarray) -> Q4Weight:
    qs = torch.from_numpy(raw[..., 4:20].reshape(raw.shape[0], -1).copy())
    return Q4Weight(qs, _f16(raw[..., 0:2]), _f16(raw[..., 2:4]))


def _q8_0(raw: np.ndarray) -> Q8Weight:
    qs = torch.from_numpy(raw[..., 2:34].reshape(raw.shape[0], -1).view(np.int8).copy())
    return Q8Weight(qs, _f16(raw[..., 0:2]))


def _q4_k(raw: np.ndarray) -> Q4Weight:
    """256-element super-blocks: float16 d and dmin, 8 packed 6-bit (scale, min) pairs, and
    4 x 32 bytes whose low / high nibbles are sub-blocks 2j / 2j + 1."""
    n, nsb = raw.shape[0], raw.shape[1]
    d = _f16(raw[..., 0:2]).float()
    dmin = _f16(raw[..., 2:4]).float()
    s = raw[..., 4:16].astype(np.int32)  # [n, nsb, 12]
    scales = np.concatenate((s[..., 0:4] & 63, (s[..., 8:12] & 15) | ((s[..., 0:4] >> 6) << 4)), -1)
    mins = np.concatenate((s[..., 4:8] & 63, (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)), -1)
    q = raw[..., 16:144].reshape(n, nsb, 4, 32)
    nibbles = np.stack((q & 15, q >> 4), axis=3).reshape(n, nsb * 8, 32)  # sub-block order
    qs = nibbles[..., :16] | (nibbles[..., 16:] << 4)
    sub_d = d.unsqueeze(-1) * torch.from_numpy(scales).float()
    sub_m = -dmin.unsqueeze(-1) * torch.from_numpy(mins).float()
    return Q4Weight(
        torch.from_numpy(qs.reshape(n, -1).astype(np.uint8)),
        sub_d.reshape(n, -1).half(),
        sub_m.reshape(n, -1).half(),
    )


# type name -> (block bytes, elements per block, decoder)
_GGUF_DECODERS = {
    "Q4_0": (18, 32, _q4_0),
    "Q4_1": (20, 32, _q4_1),
    "Q8_0": (34, 32, _q8_0),
    "Q4_K": (144, 256, _q4_k),
}
GGUF_NATIVE_TYPES = tuple(_GGUF_DECODERS)


def from_gguf_blocks(type_name: str, raw: np.ndarray, in_features: int) -> QuantWeight | None:
    """The GGUF tensor's bytes ([N, row bytes] uint8) as a kernel format, or None when its
    type is not one the kernels read byte for byte."""
    if type_name not in _GGUF_DECODERS:
        return None
    block_bytes, per_block, decode = _GGUF_DECODERS[type_name]
    rows = raw.reshape(raw.shape[0], in_features // per_block, block_bytes)
    return decode(rows)


# --- Tiles of 8 rows, for the kernels' batched path ----------------------------------------

TILE = 8


@dataclass
class TiledWeight:
    """A ``Q4Weight`` or ``Q8Weight`` repacked so that 8 rows of W share each load of x (see
    inference/kernels/quant_tiles.cpp): per tile and block, 4-byte runs of the 8 rows side by
    side, and the 8 rows' scales side by side. Made once at load."""

    qs: torch.Tensor  # uint8 [N/8, K/32, 128] (4-bit) or int8 [N/8, K/32, 256] (8-bit)
    d: torch.Tensor  # float16 [N/8, K/32, 8]
    m: torch.Tensor | None  # float16 [N/8, K/32, 8]; None for 8-bit
    bits: int

    @property
    def tensors(self) -> list[torch.Tensor]:
        """As the compiled ops take them: [qs, d, m] (4-bit) or [qs, d] (8-bit)."""
        return [self.qs, self.d] if self.m is None else [self.qs, self.d, self.m]


def can_tile(weight: QuantWeight) -> bool:
    return weight.out_features % TILE == 0


def _side_by_side(scales: torch.Tensor) -> torch.Tensor:
    n, blocks = scales.shape
    return scales.view(n // TILE, TILE, blocks).transpose(1, 2).contiguous()


def tile_rows(weight: QuantWeight) -> TiledWeight:
    """``weight`` in tiles of 8 rows (its out_features must be a multiple of 8)."""
    n, blocks = weight.d.shape
    if not can_tile(weight):
        raise ValueError(f"{n} rows do not split into tiles of {TILE}")
    # [N, blocks, runs of 4 bytes, 4] -> [tiles, blocks, runs, 8 rows, 4]
    runs = weight.qs.view(n // TILE, TILE, blocks, -1, 4).permute(0, 2, 3, 1, 4)
    qs = runs.reshape(n // TILE, blocks, -1).contiguous()
    m = _side_by_side(weight.m) if isinstance(weight, Q4Weight) else None
    return TiledWeight(qs, _side_by_side(weight.d), m, weight.bits)
