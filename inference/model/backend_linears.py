"""The transformers backend's linears served by ``inference.model.linear``'s projections.

The family's modeling code keeps calling its ``nn.Linear`` modules; each one is swapped for a
``ProjectionLinear`` around a projection: 4/8-bit weights read by the compiled kernels
(``--quantize int8|int4``, a GGUF's own blocks), or, for the dense ones where oneDNN runs the
dtype, a weight reordered once into oneDNN's blocked layout (what the fused Llama path reads;
``F.linear`` re-lays the weight out on every call). Must not import the engine or Django.
"""

from __future__ import annotations

import torch
from torch import nn

from inference.cpu import LinearPath
from inference.model.linear import Projection, QuantizedWeights, build_projection, linear_path


class ProjectionLinear(nn.Module):
    """Takes an ``nn.Linear``'s place with a projection of ``inference.model.linear``."""

    def __init__(self, projection: Projection, in_features: int, out_features: int) -> None:
        super().__init__()
        self.projection = projection
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [..., in_features]
        out = self.projection(x.reshape(-1, self.in_features).contiguous())
        return out.view(*x.shape[:-1], self.out_features)


def _swap(model: nn.Module, name: str, module: nn.Linear, projection: Projection) -> None:
    model.set_submodule(name, ProjectionLinear(projection, module.in_features, module.out_features))


def serve_quantized(model: nn.Module, quantized: QuantizedWeights, release: bool) -> int:
    """Swap every linear ``quantized`` has weights for; returns how many. The weights are
    given away (a second runner must not take them); ``release`` frees the float ones."""
    if not quantized.weights:
        raise ValueError("these quantized weights were already given to another runner")
    embedding = model.get_input_embeddings().weight
    device, dtype = embedding.device, embedding.dtype
    swapped = 0
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Linear) or name not in quantized.weights:
            continue
        is_shared = module.weight is embedding  # tied head: the embedding still reads it
        projection = build_projection(
            [(name, module)], device, dtype, quantized, release and not is_shared
        )
        _swap(model, name, module, projection)
        swapped += 1
    quantized.weights.clear()
    return swapped


def serve_prepacked(model: nn.Module, release: bool) -> int:
    """Swap every remaining dense linear in the model's dtype for a oneDNN-prepacked one;
    returns how many (0 where oneDNN does not run the dtype: ``F.linear`` stays). ``release``
    frees the float weights the prepacked copies replace (never a tied embedding's)."""
    embedding = model.get_input_embeddings().weight
    device, dtype = embedding.device, embedding.dtype
    if linear_path(device, dtype) != LinearPath.ONEDNN:
        return 0
    swapped = 0
    for name, module in list(model.named_modules()):
        # NOTE: exactly nn.Linear: a subclass may read its weight in its own way, and a linear
        # kept in another dtype (a float32 router) is computed in that dtype by the family
        if type(module) is not nn.Linear or module.weight.dtype != dtype:
            continue
        is_shared = module.weight is embedding
        release_this = release and not is_shared
        projection = build_projection([(name, module)], device, dtype, None, release_this)
        _swap(model, name, module, projection)
        swapped += 1
    return swapped
