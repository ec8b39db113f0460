"""Attention over the paged KV cache as a transformers attention function.

``paged_attention`` is registered with ``transformers.AttentionInterface`` under
``ATTENTION_NAME``; a model whose configs name it calls it from every attention layer with the
query, key and value of all the step's packed tokens (after RoPE, QK norms, ...). It reads the
step's ``PagedStep`` (passed down as the ``paged_step`` forward keyword), writes the new K and
V into the layer's cache and attends each sequence's queries over its cached context: causal,
GQA (the query heads sharing a KV head are extra query rows, no K/V repeat), the layer's
``scaling``, logit ``softcap``, ``sliding_window`` and attention sinks. No mask is built by
transformers for an implementation it does not know (``masking_utils`` returns None).

Sliding windows follow transformers' masks: a query at position q sees keys k with
``q - window < k <= q``.
Must not import the engine or Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from inference.model.kv_format import KVFormat

ATTENTION_NAME = "inference_paged"
QUERY_BLOCK = 256  # a prompt chunk's queries attended per call (bounds the mask and scores)
NOT_PASSED = -1  # a family that passes no ``sliding_window`` keeps it on the module, if any


@dataclass
class DecodeRows:
    """Single-token rows [row_start, row_end) of similar context length, attended together."""

    row_start: int
    row_end: int
    blocks: torch.Tensor  # [n * max_blocks] each row's block ids, padded with block 0
    positions: torch.Tensor  # [n] each row's position (it sees keys 0..position)


@dataclass
class PromptRows:
    """One sequence's multi-token chunk: packed rows [row_start, row_end) at ``start``."""

    row_start: int
    row_end: int
    start: int
    blocks: torch.Tensor | None  # [nb] blocks of positions 0..end-1; None: no cached prefix


@dataclass
class PagedStep:
    """What every layer's attention reads in one forward: set by the runner per step.

    layers: layer index -> that layer's cache, [blocks, block_size, 2, kv_heads, stored width].
    """

    layers: dict[int, torch.Tensor]
    block_size: int
    slots: torch.Tensor  # [T] slot (block * block_size + offset) written by each token
    decodes: list[DecodeRows]
    prompts: list[PromptRows]
    kv_format: KVFormat  # how the caches store rows (``--kv-cache-dtype``)
    masks: dict[tuple, torch.Tensor] = field(default_factory=dict)  # shared by the layers

    def mask(self, key: tuple, build) -> torch.Tensor:
        """The cached mask ``key`` (the same for every layer with the same window)."""
        found = self.masks.get(key)
        if found is None:
            found = self.masks[key] = build()
        return found


def visible(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int | None) -> torch.Tensor:
    """[..., Q, K] True where a query sees a key: q_pos [..., Q, 1], k_pos [K]."""
    seen = k_pos <= q_pos
    if window:
        seen &= k_pos > q_pos - window
    return seen


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    scaling: float,
    softcap: float | None,
    sinks: torch.Tensor | None,
) -> torch.Tensor:
    """Masked attention, GQA folded into query rows.

    q: [B, kv_heads, R, d]; k: [B, kv_heads, L, d]; v: [B, kv_heads, L, dv]
    mask: [B, 1, R, L] bool; sinks: [kv_heads, R] logits (already laid out per row) or None
    returns: [B, kv_heads, R, dv]
    """
    if softcap is None and sinks is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scaling)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.masked_fill(~mask, float("-inf"))
    if sinks is not None:  # one more logit per row that takes probability mass, no value
        sink = sinks.to(scores.dtype).unsqueeze(0).unsqueeze(-1).expand(*scores.shape[:-1], 1)
        scores = torch.cat((scores, sink), dim=-1)
        scores = scores - scores.amax(dim=-1, keepdim=True)
    probs = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
    if sinks is not None:
        probs = probs[..., :-1]
    return torch.matmul(probs, v)


def _sinks(module: nn.Module, kwargs: dict) -> torch.Tensor | None:
    """The layer's attention sinks, [heads], if its family has them (e.g. gpt-oss)."""
    sinks = kwargs.get("s_aux")
    if sinks is None:
        sinks = getattr(module, "sinks", None)
    return sinks if isinstance(sinks, torch.Tensor) else None


def paged_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    sliding_window: int | None = NOT_PASSED,
    softcap: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """The transformers attention function: returns ([1, T, heads, dv], None).

    query: [1, heads, T, d]; key: [1, kv_heads, T, d]; value: [1, kv_heads, T, dv]
    """
    step = kwargs.get("paged_step")
    if step is None:
        raise RuntimeError(f"{ATTENTION_NAME} attention needs the runner's paged_step")
    if isinstance(step, LayerProbe):
        return step.record(module, query, key, value)
    window = sliding_window
    if window == NOT_PASSED:  # e.g. Qwen2-MoE sets it on its sliding layers only
        window = getattr(module, "sliding_window", None)
    hq, hkv = query.shape[1], key.shape[1]
    d, dv = key.shape[-1], value.shape[-1]
    scaling = d**-0.5 if scaling is None else scaling
    sinks = _sinks(module, kwargs)
    if sinks is not None:
        sinks = sinks.view(hkv, hq // hkv)

    cache = step.layers[module.layer_idx]  # [blocks, block_size, 2, kv_heads, stored width]
    fmt = step.kv_format
    width = fmt.head_dim(cache.shape[-1])  # K and V are padded to the wider of the two
    new = torch.stack(
        (F.pad(key[0], (0, width - d)), F.pad(value[0], (0, width - dv))), dim=2
    )  # [kv_heads, T, 2, width]
    fmt.write(cache, step.slots, new.permute(1, 2, 0, 3))

    group = hq // hkv
    q = query[0].transpose(0, 1)  # [T, heads, d]
    out = q.new_empty(q.shape[0], hq, dv)
    attention = (scaling, softcap)
    for rows in step.decodes:
        n = rows.row_end - rows.row_start
        kv = fmt.decode(cache.index_select(0, rows.blocks), width)
        kv = kv.view(n, -1, 2, hkv, width)  # [n, L, 2, hkv, w]
        k = kv[:, :, 0, :, :d].transpose(1, 2)  # [n, kv_heads, L, d]
        v = kv[:, :, 1, :, :dv].transpose(1, 2)
        mask = step.mask(
            ("decode", rows.row_start, window),
            lambda rows=rows, length=k.shape[2]: visible(
                rows.positions.view(-1, 1, 1, 1), torch.arange(length, device=q.device), window
            ),
        )  # [n, 1, 1, L]
        qd = q[rows.row_start : rows.row_end].view(n, hkv, group, d)
        o = attend(qd, k, v, mask, *attention, sinks)
        out[rows.row_start : rows.row_end] = o.reshape(n, hq, dv)
    for i, rows in enumerate(step.prompts):
        out[rows.row_start : rows.row_end] = _prompt_attention(
            step, i, rows, q, key, value, cache, window, attention, sinks
        )
    return out.unsqueeze(0), None


def _prompt_attention(
    step: PagedStep,
    index: int,
    rows: PromptRows,
    q: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cache: torch.Tensor,
    window: int | None,
    attention: tuple[float, float | None],
    sinks: torch.Tensor | None,
) -> torch.Tensor:
    """One prompt chunk over its context, queries in blocks; returns [n, heads, dv].

    q: [T, heads, d]; key, value: [1, kv_heads, T, d | dv] (this step's)
    """
    hq, hkv, d, dv = q.shape[1], key.shape[1], key.shape[-1], value.shape[-1]
    group, n, start = hq // hkv, rows.row_end - rows.row_start, rows.start
    if rows.blocks is None:  # a fresh prompt: its own keys are the whole context
        k = key[0, :, rows.row_start : rows.row_end]  # [kv_heads, n, d]
        v = value[0, :, rows.row_start : rows.row_end]
    else:
        context = cache.index_select(0, rows.blocks).flatten(0, 1)[: start + n]
        context = step.kv_format.decode(context, step.kv_format.head_dim(cache.shape[-1]))
        k = context[:, 0, :, :d].transpose(0, 1)  # [kv_heads, start + n, d]
        v = context[:, 1, :, :dv].transpose(0, 1)
    out = q.new_empty(n, hq, dv)
    for a in range(0, n, QUERY_BLOCK):
        b = min(n, a + QUERY_BLOCK)
        first = max(0, start + a - window + 1) if window else 0  # the block's first key
        last = start + b  # keys the block's last query sees
        mask = step.mask(
            ("prompt", index, a, window, group),
            lambda a=a, b=b, first=first, last=last: visible(
                torch.arange(start + a, start + b, device=q.device).view(-1, 1),
                torch.arange(first, last, device=q.device),
                window,
            ).repeat(group, 1)[None, None],
        )  # [1, 1, group * (b - a), keys]
        # [kv_heads, group * (b - a), d]: the query heads of a KV head, one after the other
        qb = q[rows.row_start + a : rows.row_start + b].transpose(0, 1).reshape(hkv, -1, d)
        row_sinks = None if sinks is None else sinks.repeat_interleave(b - a, dim=1)
        o = attend(qb[None], k[None, :, first:last], v[None, :, first:last], mask, *attention,
                   row_sinks)  # fmt: skip
        out[a:b] = o[0].view(hq, b - a, dv).transpose(0, 1)
    return out


@dataclass
class LayerProbe:
    """Passed instead of a ``PagedStep`` for one token: records each attention call's layer,
    head counts and head dims (the cache's per-layer shapes) and whether it is causal."""

    shapes: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # kv_heads, d, dv
    num_calls: int = 0
    is_causal: bool = True

    def record(self, module, query, key, value) -> tuple[torch.Tensor, None]:
        self.num_calls += 1
        self.is_causal &= bool(getattr(module, "is_causal", True))
        layer_idx = getattr(module, "layer_idx", None)
        if isinstance(layer_idx, int):
            self.shapes[layer_idx] = (key.shape[1], key.shape[-1], value.shape[-1])
        t = query.shape[2]
        return query.new_zeros(1, t, query.shape[1], value.shape[-1]), None


def register() -> None:
    """Make ``ATTENTION_NAME`` an attention implementation transformers dispatches to."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, paged_attention)
