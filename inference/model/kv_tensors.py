"""The paged KV cache's tensors: one block-major tensor for every layer's keys and values.

The engine's ``BlockManager`` (``inference.engine.kv_cache``) decides which block holds which
tokens; this module only owns the memory, stored in a ``KVFormat`` (``inference.model.
kv_format``: the model's dtype, int8 with per-row scales, or fp8). Must not import the engine
or Django.
"""

from __future__ import annotations

import torch

from inference.model.kv_format import KVFormat, kv_format


class KVCache:
    """Keys and values of every layer in one tensor, block-major, K and V side by side.

    kv: [num_layers, num_blocks, block_size, 2, num_kv_heads, width], allocated once; width
    is head_dim, plus the scale's bytes for int8 (``KVFormat.width``).
    A step writes its tokens' K and V with one ``index_copy_`` per layer (a layer viewed as
    [slots, 2, kv_heads, width]), and one ``index_select`` over block ids gathers a
    batch's whole context, K and V together, in block-sized contiguous chunks: about half
    the cost of gathering K and V from head-major tensors (one small chunk per head).
    Attention reads the gathered K and V as strided views, which the CPU SDPA kernel takes
    as they are.
    """

    def __init__(
        self,
        num_layers: int,
        num_blocks: int,
        block_size: int,
        num_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
        fmt: KVFormat | None = None,
    ) -> None:
        """``fmt``: how rows are stored (default: plainly in ``dtype``)."""
        self.format = fmt or kv_format("auto", dtype)
        width = self.format.width(head_dim)
        shape = (num_layers, num_blocks, block_size, 2, num_kv_heads, width)
        self.block_size = block_size
        self.kv = torch.zeros(shape, dtype=self.format.storage, device=device)

    @property
    def num_bytes(self) -> int:
        return self.kv.numel() * self.kv.element_size()
