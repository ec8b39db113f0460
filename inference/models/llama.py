"""A batched Llama-family forward over the paged KV cache, reusing the HF module's weights.

All new tokens of a step (decodes and prefill chunks of several sequences) are packed into
one [T, hidden] tensor, so every projection is one matmul for the whole batch. Q/K/V are
concatenated once at load; on CPU every projection is prepacked for oneDNN, which also fuses
SiLU, the gate*up product and the residual adds. Attention gathers each sequence's cache
blocks: single-token rows are attended in batched calls, one per group of similar context
length (GQA folded into the query rows, no K/V repeat); short prompt chunks the same way,
padded into one batch per group of similar length (a burst of chat requests is one call per
layer, not one per request); long prompt chunks one sequence at a time, in query blocks,
with a causal mask that knows their offset.

Supports Llama, Mistral (no sliding window) and Qwen2 (q/k/v bias) checkpoints.
Must not import the scheduler or the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")
SDPA_DECODE_MAX_KEYS = 1024  # decode batch x context below which SDPA beats two matmuls (CPU)
PREFILL_QUERY_BLOCK = 256  # prompt queries attended per batched matmul


def is_supported(model: nn.Module) -> bool:
    """True when ``model`` is a causal LM this module runs exactly (else use the HF forward)."""
    config = model.config
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return False
    if model_type == "qwen2" and getattr(config, "use_sliding_window", False):
        return False
    if model_type == "mistral" and getattr(config, "sliding_window", None):
        return False
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type")) in ("dynamic", "longrope"):
        return False  # depends on the sequence length at run time
    return hasattr(model, "model") and hasattr(model.model, "layers")


@dataclass
class DecodeGroup:
    """Single-token rows [row_start, row_end) of similar context length, attended together."""

    row_start: int
    row_end: int
    blocks: torch.Tensor  # [n * max_blocks] block ids, each row padded with block 0
    bias: torch.Tensor  # [1, n, 1, max_blocks * block_size]: 0, or -inf past a row's length


@dataclass
class PrefillChunk:
    """One sequence's multi-token chunk: packed rows [row_start, row_end)."""

    row_start: int
    row_end: int
    start: int  # position of the chunk's first token
    context_blocks: torch.Tensor | None  # [nb] blocks of positions 0..end-1; None: no prefix


@dataclass
class PrefillGroup:
    """Several sequences' prompt chunks, packed rows [row_start, row_end), attended as one
    padded batch of ``num_seqs`` x ``max_len`` queries over their cached contexts."""

    row_start: int
    row_end: int
    num_seqs: int
    max_len: int
    query_rows: torch.Tensor  # [num_seqs * max_len] packed row (from row_start) of each query
    valid: torch.Tensor  # [row_end - row_start] padded query of each packed row, in order
    blocks: torch.Tensor  # [num_seqs * max_blocks] block ids, each row padded with block 0
    bias: torch.Tensor  # [1, num_seqs, max_len * group, max_blocks * block_size]: 0 or -1e30


@dataclass
class AttentionMetadata:
    """Where each packed token goes in the cache and what it attends to.

    Tokens are packed as: single-token (decode) rows first, grouped by context length, then
    the prompt chunks, batched groups and single sequences, in the order of ``prefills``.
    """

    slot_mapping: torch.Tensor  # [T] slot (block * block_size + offset) written by each token
    decode_groups: list[DecodeGroup]
    prefills: list[PrefillChunk | PrefillGroup]


def can_prepack(device: torch.device, dtype: torch.dtype) -> bool:
    """oneDNN prepacked linears: CPU only, fp32/bf16, where PyTorch was built with oneDNN."""
    return (
        device.type == "cpu"
        and dtype in (torch.float32, torch.bfloat16)
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    )


def _linear_binary(x, other, weight, bias, op: str) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise.binary(x, other, weight, bias, op)


class Projection:
    """One linear projection (possibly several HF linears concatenated along the output).

    On CPU the weight is reordered once into oneDNN's blocked layout: about 1.5x faster
    than ``F.linear`` for decode-sized batches on this project's CPUs, and it fuses the
    activation / residual that follows. Elsewhere it is a plain ``F.linear``.
    """

    def __init__(self, linears: list[nn.Linear], prepack: bool) -> None:
        weight = (
            torch.cat([lin.weight.data for lin in linears])
            if len(linears) > 1
            else (linears[0].weight.data)
        )
        self.bias = None
        if any(lin.bias is not None for lin in linears):
            self.bias = torch.cat(
                [
                    lin.bias.data if lin.bias is not None else weight.new_zeros(lin.out_features)
                    for lin in linears
                ]
            )
        self.prepacked = prepack
        if prepack:
            self.weight = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous())
        else:
            self.weight = weight.contiguous()
            if len(linears) > 1:
                # Let the HF modules view the fused weight, so it is not held twice.
                offset = 0
                for lin in linears:
                    lin.weight.data = self.weight[offset : offset + lin.out_features]
                    offset += lin.out_features

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.prepacked:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def silu(self, x: torch.Tensor) -> torch.Tensor:
        """silu(x W^T + b) in one op where fused."""
        if self.prepacked:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "swish", [], "")
        return F.silu(F.linear(x, self.weight, self.bias))

    def mul(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """(x W^T + b) * other in one op where fused."""
        if self.prepacked:
            return torch.ops.mkldnn._linear_pointwise.binary(
                x, other, self.weight, self.bias, "mul"
            )
        return F.linear(x, self.weight, self.bias) * other

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """(x W^T + b) + other in one op where fused (the residual connection)."""
        if self.prepacked:
            return torch.ops.mkldnn._linear_pointwise.binary(
                x, other, self.weight, self.bias, "add"
            )
        return F.linear(x, self.weight, self.bias) + other


@dataclass
class _Layer:
    input_norm: torch.Tensor
    post_norm: torch.Tensor
    qkv: Projection
    o: Projection
    gate: Projection
    up: Projection
    down: Projection


class LlamaPagedModel:
    """The forward pass over an HF Llama-family model's weights (fused / prepacked once)."""

    def __init__(self, model: nn.Module, max_positions: int) -> None:
        config = model.config
        inner = model.model
        self.num_layers = config.num_hidden_layers
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.eps = config.rms_norm_eps
        self.dtype = inner.embed_tokens.weight.dtype
        self.device = inner.embed_tokens.weight.device
        self.prepacked = can_prepack(self.device, self.dtype)
        pack = self.prepacked
        self.embed = inner.embed_tokens.weight
        self.final_norm = inner.norm.weight
        self.lm_head = Projection([model.lm_head], pack)
        self.layers: list[_Layer] = []
        for layer in inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                _Layer(
                    input_norm=layer.input_layernorm.weight,
                    post_norm=layer.post_attention_layernorm.weight,
                    qkv=Projection([attn.q_proj, attn.k_proj, attn.v_proj], pack),
                    o=Projection([attn.o_proj], pack),
                    gate=Projection([mlp.gate_proj], pack),
                    up=Projection([mlp.up_proj], pack),
                    down=Projection([mlp.down_proj], pack),
                )
            )
        positions = torch.arange(max_positions, device=self.device)[None]
        probe = torch.empty(0, dtype=self.dtype, device=self.device)
        cos, sin = inner.rotary_emb(probe, positions)
        half = self.head_dim // 2
        self.cos = cos[0]  # [max_positions, head_dim] in model dtype
        self.sin = torch.cat((-sin[0, :, :half], sin[0, :, half:]), dim=-1)  # rotate_half's sign

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # One fused op (fp32 statistics); equals LlamaRMSNorm up to bf16 rounding of the scale.
        return F.rms_norm(x, weight.shape, weight, self.eps)

    def rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """HF's ``x * cos + rotate_half(x) * sin`` with the sign folded into ``sin``.

        x: [T, heads, d]; cos, sin: [T, 1, d] (sin's first half negated at load).
        """
        return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), sin)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        meta: AttentionMetadata,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
    ) -> torch.Tensor:
        """Hidden states after the final norm for every packed token.

        input_ids, positions: [T]; k_cache, v_cache: [layers, kv_heads, blocks, block_size, d]
        returns: [T, hidden]
        """
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        num_tokens = input_ids.shape[0]
        cos = self.cos[positions].unsqueeze(1)
        sin = self.sin[positions].unsqueeze(1)
        h = F.embedding(input_ids, self.embed)
        for i, layer in enumerate(self.layers):
            x = self.rms_norm(h, layer.input_norm)
            qkv = layer.qkv(x).view(num_tokens, hq + 2 * hkv, d)
            qk = self.rope(qkv[:, : hq + hkv], cos, sin)  # q and k heads are adjacent
            q, k, v = qk[:, :hq], qk[:, hq:], qkv[:, hq + hkv :]
            k_layer, v_layer = k_cache[i], v_cache[i]
            num_slots = k_layer.shape[1] * k_layer.shape[2]
            k_layer.view(hkv, num_slots, d).index_copy_(1, meta.slot_mapping, k.transpose(0, 1))
            v_layer.view(hkv, num_slots, d).index_copy_(1, meta.slot_mapping, v.transpose(0, 1))
            attn = self.attention(q, k, v, k_layer, v_layer, meta)
            h = layer.o.add(attn, h)
            x = self.rms_norm(h, layer.post_norm)
            h = layer.down.add(layer.up.mul(x, layer.gate.silu(x)), h)
        return self.rms_norm(h, self.final_norm)

    def attention(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        k_layer: torch.Tensor,
        v_layer: torch.Tensor,
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        """q: [T, heads, d]; k, v: [T, kv_heads, d] (this step's); returns [T, heads * d].

        k_layer, v_layer: [kv_heads, blocks, block_size, d], already holding this step's k, v.
        """
        outputs = [self.decode_attention(q, k_layer, v_layer, g) for g in meta.decode_groups]
        for chunk in meta.prefills:
            if isinstance(chunk, PrefillGroup):
                outputs.append(self.grouped_prefill_attention(q, k_layer, v_layer, chunk))
                continue
            rows = slice(chunk.row_start, chunk.row_end)
            if chunk.context_blocks is None:  # a fresh prompt: its own keys are the context
                kc = k[rows].transpose(0, 1)
                vc = v[rows].transpose(0, 1)
            else:
                n = chunk.start + chunk.row_end - chunk.row_start
                kc = k_layer.index_select(1, chunk.context_blocks).flatten(1, 2)[:, :n]
                vc = v_layer.index_select(1, chunk.context_blocks).flatten(1, 2)[:, :n]
            outputs.append(self.prefill_attention(q[rows], kc, vc, chunk.start))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def decode_attention(
        self, q: torch.Tensor, k_layer: torch.Tensor, v_layer: torch.Tensor, group: DecodeGroup
    ) -> torch.Tensor:
        """One token per row against its cached context; returns [n, heads * d]."""
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        n = group.row_end - group.row_start
        # GQA without repeating K/V: the query heads that share a KV head are batched
        # against it. qd: [kv_heads, n, group, d]; kd, vd: [kv_heads, n, L, d]
        qd = q[group.row_start : group.row_end].reshape(n, hkv, hq // hkv, d).transpose(0, 1)
        kd = k_layer.index_select(1, group.blocks).view(hkv, n, -1, d)
        vd = v_layer.index_select(1, group.blocks).view(hkv, n, -1, d)
        if n * kd.shape[2] <= SDPA_DECODE_MAX_KEYS:
            # Small batches: the fused kernel has far less per-call overhead.
            out = F.scaled_dot_product_attention(qd.contiguous(), kd, vd, attn_mask=group.bias)
        else:
            # Large batches: two batched matmuls beat the fused CPU kernel.
            scores = torch.matmul(qd * d**-0.5, kd.transpose(-1, -2)) + group.bias
            probs = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(probs, vd)  # [kv_heads, n, group, d]
        return out.transpose(0, 1).reshape(n, hq * d)

    def grouped_prefill_attention(
        self, q: torch.Tensor, k_layer: torch.Tensor, v_layer: torch.Tensor, g: PrefillGroup
    ) -> torch.Tensor:
        """Short prompt chunks of several sequences in one padded batch; [rows, heads * d]."""
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        group, n, length = hq // hkv, g.num_seqs, g.max_len
        qg = q[g.row_start : g.row_end].index_select(0, g.query_rows)  # [n * length, hq, d]
        # [kv_heads, n, length * group, d]: the query heads sharing a KV head are extra rows.
        qd = qg.view(n, length, hkv, group, d).permute(2, 0, 1, 3, 4).reshape(hkv, n, -1, d)
        kd = k_layer.index_select(1, g.blocks).view(hkv, n, -1, d)
        vd = v_layer.index_select(1, g.blocks).view(hkv, n, -1, d)
        scores = torch.matmul(qd * d**-0.5, kd.transpose(-1, -2)) + g.bias
        probs = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, vd).view(hkv, n, length, group, d)
        out = out.permute(1, 2, 0, 3, 4).reshape(n * length, hq * d)
        return out.index_select(0, g.valid)

    def prefill_attention(
        self, q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, start: int
    ) -> torch.Tensor:
        """Causal attention of a chunk at position ``start`` over its context.

        q: [n, heads, d]; kc, vc: [kv_heads, start + n, d]; returns [n, heads * d].
        Queries go in blocks with batched matmuls (GQA folded into the query rows): the CPU
        SDPA kernel is 3-10x slower for long causal prompts, and a block bounds the scores'
        memory to [heads, block, context].
        """
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        group, n = hq // hkv, q.shape[0]
        key_pos = torch.arange(start + n, device=q.device)
        out = torch.empty(n, hq, d, dtype=q.dtype, device=q.device)
        for a in range(0, n, PREFILL_QUERY_BLOCK):
            b = min(n, a + PREFILL_QUERY_BLOCK)
            visible = start + b  # keys the block's last query sees
            qb = q[a:b].view(b - a, hkv, group, d).permute(1, 2, 0, 3)  # [kv, group, qb, d]
            qb = qb.reshape(hkv, group * (b - a), d) * d**-0.5
            scores = torch.matmul(qb, kc[:, :visible].transpose(1, 2))
            q_pos = torch.arange(start + a, start + b, device=q.device)
            hidden = key_pos[:visible].unsqueeze(0) > q_pos.unsqueeze(1)  # [qb, visible]
            scores.view(hkv, group, b - a, visible).masked_fill_(hidden, float("-inf"))
            probs = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
            ob = torch.matmul(probs, vc[:, :visible])  # [kv, group * qb, d]
            out[a:b] = ob.view(hkv, group, b - a, d).permute(2, 0, 1, 3).reshape(b - a, hq, d)
        return out.view(n, hq * d)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: [N, hidden] (already normed) -> [N, vocab] fp32."""
        return self.lm_head(hidden).float()
