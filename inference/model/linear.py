"""Linear projections on every CPU (and GPU): dense, oneDNN-prepacked, or quantized weights.

A decode step at batch 1 reads every weight once, so what a projection stores and which
kernel reads it decide latency. ``DenseProjection`` is ``F.linear`` (runs everywhere) or,
where ``inference.cpu`` says oneDNN runs the dtype, a weight reordered once into oneDNN's
blocked layout that also fuses the residual add that follows. ``QuantProjection``
holds 4- or 8-bit weights (``inference.model.quant``) read by the compiled kernels at small
batches, where bytes decide, and for large batches, where compute decides, a float matmul:
over a dense copy, or (``SlabProjection``) over W de-quantized slab by slab at each call, so
that no copy is held (the crossover is measured at load, see ``inference.model.quant_loader``).
Must not import the engine, the scheduler or Django.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from inference import kernels
from inference.cpu import LinearPath, cpu_info
from inference.model.quant import (
    Q4Weight,
    Q8Weight,
    QuantWeight,
    TiledWeight,
    can_tile,
    cat_rows,
    tile_rows,
)
from inference.model.row_buckets import in_fixed_shapes

logger = logging.getLogger(__name__)


@dataclass
class QuantizedWeights:
    """Which linears are served quantized: HF module name -> weight, and how.

    ``max_rows``: the largest batch the kernels take (measured at load); larger batches use
    a float matmul over the same values when ``keep_dense``, else the kernels take every batch.
    ``dense_slabs``: that matmul de-quantizes W slab by slab at each call (float32 only)
    instead of keeping a dense copy. ``label``: what ``/info`` reports as ``quantize``.
    """

    weights: dict[str, QuantWeight] = field(default_factory=dict)
    max_rows: int = 1 << 62
    keep_dense: bool = False
    dense_slabs: bool = False
    label: str = ""


def linear_path(device: torch.device, dtype: torch.dtype) -> str:
    """The dense path ``dtype`` takes on ``device`` (oneDNN on CPUs that run it)."""
    if device.type != "cpu":
        return LinearPath.DENSE
    return cpu_info().linear_path(dtype)


class Projection:
    """``x @ W.T + b``, and the fused forms the Llama forward uses."""

    out_features: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def silu_mul(self, x: torch.Tensor) -> torch.Tensor:
        """silu(gate) * up, for a projection whose output is gate and up concatenated."""
        gate, up = self(x).chunk(2, dim=-1)
        return F.silu(gate).mul_(up)

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """(x W^T + b) + other (the residual connection)."""
        return self(x) + other


class DenseProjection(Projection):
    """A float weight, prepacked for oneDNN where ``path`` is ``onednn``.

    oneDNN's blocked layout is about 1.5x faster than ``F.linear`` for decode-sized batches
    on this project's CPUs and fuses the epilogue ops; ``F.linear`` runs every dtype on
    every CPU. oneDNN is called on a fixed ladder of row counts (``row_buckets``), so that
    its primitive cache holds every shape it will see.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, path: str) -> None:
        self.out_features = weight.shape[0]
        self.bias = bias
        self.path = path
        self.dtype = weight.dtype
        weight = weight.contiguous()
        self.prepacked = path == LinearPath.ONEDNN
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight) if self.prepacked else weight

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.prepacked:
            return in_fixed_shapes(self._onednn, x)
        return F.linear(x, self.weight, self.bias)

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        if self.prepacked:
            return in_fixed_shapes(self._onednn, x, other)
        return F.linear(x, self.weight, self.bias) + other

    def _onednn(self, x: torch.Tensor, other: torch.Tensor | None) -> torch.Tensor:
        # NOTE: oneDNN builds a primitive per row count: callers go through in_fixed_shapes
        linear = torch.ops.mkldnn._linear_pointwise
        if other is None:
            return linear(x, self.weight, self.bias, "none", [], "")
        return linear.binary(x, other, self.weight, self.bias, "add")


class QuantProjection(Projection):
    """Quantized weights for batches of at most ``max_rows`` rows, ``dense`` beyond.

    The kernels read W in tiles of 8 rows where its rows split so (every projection of the
    usual models): 8 rows of W then share each load of x, about twice the speed of the row
    layout at any batch; only the tiles are kept then. ``dense`` holds the same values
    de-quantized; ``dense_slabs`` de-quantizes the tiles per call instead (``SlabProjection``);
    with neither, the kernels take every batch.
    """

    reads_tiles = True

    def __init__(
        self,
        weight: QuantWeight,
        bias: torch.Tensor | None,
        dense: DenseProjection | None,
        max_rows: int,
        dense_slabs: bool = False,
    ) -> None:
        self.out_features = weight.out_features
        self.tiled: TiledWeight | None = None
        if self.reads_tiles and can_tile(weight):
            self.tiled = tile_rows(weight)
        # The kernels read one layout: the row one is kept only where W is not tiled.
        self.weight: QuantWeight | None = weight if self.tiled is None else None
        self.bias = bias
        self.dense: Projection | None = dense
        if dense is None and dense_slabs and self.tiled is not None:
            self.dense = SlabProjection(self.tiled, bias)
        self.max_rows = max_rows if self.dense is not None else 1 << 62

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The weight as the compiled ops take it: [qs, d, m] (4-bit) or [qs, d] (8-bit),
        three-dimensional when tiled."""
        if self.tiled is not None:
            return self.tiled.tensors
        w = self.weight
        return [w.qs, w.d, w.m] if isinstance(w, Q4Weight) else [w.qs, w.d]

    def _quantized(self, x: torch.Tensor) -> torch.Tensor:
        ops = torch.ops.inference_kernels  # the ops themselves (x is [rows, K]): no wrapper
        w, t = self.weight, self.tiled
        if t is not None and t.m is not None:
            out = ops.q4_linear_tiled(x, t.qs, t.d, t.m, False)
        elif t is not None:
            out = ops.q8_linear_tiled(x, t.qs, t.d, False)
        elif isinstance(w, Q4Weight):
            out = ops.q4_linear(x, w.qs, w.d, w.m, False)
        elif isinstance(w, Q8Weight):
            out = ops.q8_linear(x, w.qs, w.d, False)
        else:  # pragma: no cover - QuantWeight is one of the two
            raise TypeError(type(w).__name__)
        return out if self.bias is None else out + self.bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.max_rows:
            return self.dense(x)
        return self._quantized(x)

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.max_rows:
            return self.dense.add(x, other)
        return self._quantized(x).add_(other)


class SlabProjection(Projection):
    """The tiles' values as a float32 matmul, W de-quantized one slab (about 1 MB) at a time
    per call (quant_dense.cpp): the batches where the float matmul beats the int8 kernels
    (prefill chunks on a CPU without VNNI), without a float copy of W held beside its bytes."""

    def __init__(self, tiled: TiledWeight, bias: torch.Tensor | None) -> None:
        self.tiled = tiled
        self.bias = bias
        self.out_features = tiled.qs.shape[0] * 8

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        ops, t = torch.ops.inference_kernels, self.tiled
        x32 = x.float()
        if t.m is not None:
            out = ops.q4_linear_slabs(x32, t.qs, t.d, t.m)
        else:
            out = ops.q8_linear_slabs(x32, t.qs, t.d)
        out = out if self.bias is None else out + self.bias
        return out.to(x.dtype)


class PortableQuantProjection(QuantProjection):
    """Quantized weights de-quantized at every call: where the kernels could not be built,
    the weights still take their quantized bytes in memory, and every batch still runs."""

    reads_tiles = False  # no kernel reads them here

    def _quantized(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.dequantize(x.dtype), self.bias)


def build_projection(
    linears: list[tuple[str, nn.Linear]],
    device: torch.device,
    dtype: torch.dtype,
    quantized: QuantizedWeights | None = None,
    release_dense: bool = False,
) -> Projection:
    """One projection for HF linears concatenated along the output (fused q/k/v).

    ``release_dense``: free the HF float weights where the projection holds its own copy
    (quantized bytes, or oneDNN's prepacked layout), so that no weight is held twice; False
    for a weight shared with something else (a tied embedding)."""
    modules = [lin for _, lin in linears]
    bias = None
    if any(lin.bias is not None for lin in modules):
        bias = torch.cat(
            [
                lin.bias.data if lin.bias is not None else lin.weight.new_zeros(lin.out_features)
                for lin in modules
            ]
        )
    if quantized is not None and all(name in quantized.weights for name, _ in linears):
        qweight = cat_rows([quantized.weights[name] for name, _ in linears])
        runs_kernels = device.type == "cpu" and kernels.available()
        slabs = quantized.keep_dense and quantized.dense_slabs and runs_kernels
        slabs = slabs and can_tile(qweight)  # SlabProjection reads the tiles
        dense = None
        if quantized.keep_dense and not slabs:
            dense = _dense(modules, bias, device, dtype, release_dense)
        elif release_dense:
            _free_weights(modules)  # the quantized bytes are all that is kept
        if not runs_kernels:
            return PortableQuantProjection(qweight, bias, dense, quantized.max_rows)
        return QuantProjection(qweight, bias, dense, quantized.max_rows, dense_slabs=slabs)
    return _dense(modules, bias, device, dtype, release_dense)


def _dense(
    modules: list[nn.Linear],
    bias: torch.Tensor | None,
    device: torch.device,
    dtype: torch.dtype,
    release: bool,
) -> DenseProjection:
    """The float weights held once: a prepacked copy frees the HF ones (``release``), a
    plain one is what the HF modules view."""
    path = linear_path(device, dtype)
    if len(modules) == 1:
        projection = DenseProjection(modules[0].weight.data, bias, path)
    else:
        projection = DenseProjection(torch.cat([lin.weight.data for lin in modules]), bias, path)
    if projection.prepacked:
        if release:
            _free_weights(modules)
    elif len(modules) > 1:
        offset = 0
        for lin in modules:
            lin.weight.data = projection.weight[offset : offset + lin.out_features]
            offset += lin.out_features
    return projection


def _free_weights(modules: list[nn.Linear]) -> None:
    """Drop the HF float weights that a projection keeps its own copy of."""
    for lin in modules:
        lin.weight.data = lin.weight.data.new_empty(0)
