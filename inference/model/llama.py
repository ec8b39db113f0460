"""A batched Llama-family forward over the paged KV cache, reusing the HF module's weights.
NOTE: a line over 400: the forward, its weight set-up and its cache writes read as one unit.

All new tokens of a step (decodes and prefill chunks of several sequences) are packed into
one [T, hidden] tensor, so every projection is one matmul for the whole batch; Q/K/V are
concatenated once at load and each projection takes this CPU's fastest path for its weights
(``inference.model.linear``: oneDNN prepacked with fused residual adds, ``F.linear``, or the
compiled 4/8-bit kernels). The cache is block-major, K and V side by side: one
``index_copy_`` writes a step's K and V, one ``index_select`` gathers a batch's context.
On the CPU, decode rows go to the compiled kernel (``inference.kernels``: every row's blocks
read in place, 2-3x faster than gather + SDPA at batch 32); everything else is PyTorch's
fused SDPA on strided views (1.2-7x faster than batched matmuls here): decode rows and short
prompt chunks in one call per group of similar length (GQA folded into the query rows),
long prompt chunks one sequence at a time with a causal mask that knows their offset.
Runs Llama, Mistral and Qwen2 (``unsupported_reason``: why not). Must not import the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inference import kernels
from inference.model.kv_format import kv_format
from inference.model.linear import Projection, QuantizedWeights, QuantProjection, build_projection

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")
PREFILL_QUERY_BLOCK = 256  # queries of a chunk after a cached prefix attended per call


def unsupported_reason(model: nn.Module) -> str | None:
    """Why this module cannot run ``model`` exactly, or None when it can."""
    config = model.config
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {model_type!r} is not one of {', '.join(SUPPORTED_MODEL_TYPES)}"
    if model_type == "qwen2" and getattr(config, "use_sliding_window", False):
        return "it uses a sliding window"
    if model_type == "mistral" and getattr(config, "sliding_window", None):
        return "it uses a sliding window"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type"))
    if rope_type in ("dynamic", "longrope"):
        return f"its {rope_type} RoPE depends on the sequence length at run time"
    if not (hasattr(model, "model") and hasattr(model.model, "layers")):
        return "it has no model.layers"
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv_width = config.num_key_value_heads * head_dim
    if any(layer.self_attn.k_proj.out_features != kv_width for layer in model.model.layers):
        return "its layers differ in KV heads"
    return None


@dataclass
class DecodeGroup:
    """Single-token rows [row_start, row_end) of similar context length, attended together."""

    row_start: int
    row_end: int
    blocks: torch.Tensor  # [n * max_blocks] block ids, each row padded with block 0
    context_lens: torch.Tensor  # [n] positions each row attends to (its own included)
    # [n, 1, 1, max_blocks * block_size]: 0, or the lowest value past a row's length (SDPA only)
    bias: torch.Tensor | None


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
    bias: torch.Tensor  # [num_seqs, 1, max_len * group, max_blocks * block_size]: 0 or lowest


@dataclass
class AttentionMetadata:
    """Where each packed token goes in the cache and what it attends to.

    Tokens are packed as: single-token (decode) rows first, grouped by context length, then
    the prompt chunks, batched groups and single sequences, in the order of ``prefills``.
    """

    slot_mapping: torch.Tensor  # [T] slot (block * block_size + offset) written by each token
    decode_groups: list[DecodeGroup]
    prefills: list[PrefillChunk | PrefillGroup]


@dataclass
class _Fused:
    """What the one-call decode layer reads besides the projections: float32 copies."""

    max_rows: int  # the largest step of decode rows the quantized kernels take
    cos: torch.Tensor  # [max_positions, head_dim]
    sin: torch.Tensor  # [max_positions, head_dim], rotate_half's sign folded in
    norms: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: input, post-attention
    final_norm: torch.Tensor
    eps: float


@dataclass
class _Layer:
    input_norm: torch.Tensor
    post_norm: torch.Tensor
    qkv: Projection
    o: Projection
    gate_up: Projection  # gate and up concatenated: one read of x, one call
    down: Projection


class LlamaPagedModel:
    """The forward pass over an HF Llama-family model's weights (fused / prepacked once)."""

    def __init__(
        self,
        model: nn.Module,
        max_positions: int,
        quantized: QuantizedWeights | None = None,
        release_hf_weights: bool = False,
    ) -> None:
        """``release_hf_weights``: free the HF linears' float weights where a projection keeps
        its own copy (quantized, prepacked); the HF model's forward no longer runs then."""
        if quantized is not None and not quantized.weights:
            raise ValueError("these quantized weights were already given to another runner")
        config = model.config
        inner = model.model
        self.num_layers = config.num_hidden_layers
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.eps = config.rms_norm_eps
        self.dtype = inner.embed_tokens.weight.dtype
        self.device = inner.embed_tokens.weight.device
        self.kv_format = kv_format("auto", self.dtype)  # how the cache stores K/V (the runner's)
        self.decode_kernel = kernels.supports(
            self.device, self.dtype, self.head_dim, self.num_heads // self.num_kv_heads
        )
        names = {module: name for name, module in model.named_modules()}

        def project(*linears: nn.Linear, is_shared: bool = False) -> Projection:
            named = [(names[lin], lin) for lin in linears]
            release = release_hf_weights and not is_shared
            return build_projection(named, self.device, self.dtype, quantized, release)

        self.embed = inner.embed_tokens.weight
        self.final_norm = inner.norm.weight
        tied = model.lm_head.weight is inner.embed_tokens.weight
        self.lm_head = project(model.lm_head, is_shared=tied)
        self.layers: list[_Layer] = []
        for layer in inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                _Layer(
                    input_norm=layer.input_layernorm.weight,
                    post_norm=layer.post_attention_layernorm.weight,
                    qkv=project(attn.q_proj, attn.k_proj, attn.v_proj),
                    o=project(attn.o_proj),
                    gate_up=project(mlp.gate_proj, mlp.up_proj),
                    down=project(mlp.down_proj),
                )
            )
        positions = torch.arange(max_positions, device=self.device)[None]
        cos, sin = inner.rotary_emb(torch.empty(0, device=self.device), positions)  # float32
        half = self.head_dim // 2
        cos = cos[0]  # [max_positions, head_dim]
        sin = torch.cat((-sin[0, :, :half], sin[0, :, half:]), dim=-1)  # rotate_half's sign
        self.cos, self.sin = cos.to(self.dtype), sin.to(self.dtype)
        # RMSNorm and rotary as one compiled pass each (float32 tables), where they run
        self.layer_ops = self.decode_kernel and self.head_dim <= 256
        self.cos32, self.sin32 = cos.contiguous(), sin.contiguous()
        self.fused = self._fused_decode(cos, sin, model.config)

    def _fused_decode(self, cos: torch.Tensor, sin: torch.Tensor, config) -> _Fused | None:
        """The float32 tables of the one-call decode layer, where it runs this model: every
        projection read by the quantized kernels, and the decode attention kernel built."""
        projections = [p for layer in self.layers for p in (layer.qkv, layer.o, layer.gate_up)]
        projections += [layer.down for layer in self.layers]
        if not self.decode_kernel or self.head_dim > 256:
            return None
        if not all(type(p) is QuantProjection for p in projections):
            return None
        return _Fused(
            max_rows=min(p.max_rows for p in projections),
            cos=cos,
            sin=sin,
            norms=[(layer.input_norm.float(), layer.post_norm.float()) for layer in self.layers],
            final_norm=self.final_norm.float(),
            eps=float(config.rms_norm_eps),
        )

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # fp32 statistics; equals LlamaRMSNorm up to bf16 rounding of the scale.
        if self.layer_ops and x.is_contiguous():
            return kernels.rms_norm(x, weight, self.eps)
        return F.rms_norm(x, weight.shape, weight, self.eps)

    def silu_mul(self, gate_up: Projection, x: torch.Tensor) -> torch.Tensor:
        """silu(gate) * up of the fused gate/up projection of x."""
        if self.layer_ops:
            return kernels.silu_mul(gate_up(x).contiguous())
        return gate_up.silu_mul(x)

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
        kv_cache: torch.Tensor,
    ) -> torch.Tensor:
        """Hidden states after the final norm for every packed token.

        input_ids, positions: [T]; kv_cache: [layers, blocks, block_size, 2, kv_heads, d]
        returns: [T, hidden]
        """
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        num_tokens = input_ids.shape[0]
        if self.fused and not meta.prefills and num_tokens <= self.fused.max_rows:
            return self.fused_decode(input_ids, positions, meta, kv_cache)
        if not self.layer_ops:
            cos = self.cos[positions].unsqueeze(1)
            sin = self.sin[positions].unsqueeze(1)
        h = F.embedding(input_ids, self.embed)
        for i, layer in enumerate(self.layers):
            x = self.rms_norm(h, layer.input_norm)
            qkv = layer.qkv(x).view(num_tokens, hq + 2 * hkv, d)
            if self.layer_ops:  # q and k heads are adjacent: rotated in place
                kernels.rope_(qkv, hq + hkv, self.cos32, self.sin32, positions)
                qk = qkv[:, : hq + hkv]
            else:
                qk = self.rope(qkv[:, : hq + hkv], cos, sin)
            q = qk[:, :hq]
            kv = torch.stack((qk[:, hq:], qkv[:, hq + hkv :]), dim=1)  # [T, 2, kv_heads, d]
            kv_layer = kv_cache[i]
            self.kv_format.write(kv_layer, meta.slot_mapping, kv)
            attn = self.attention(q, kv, kv_layer, meta)
            h = layer.o.add(attn, h)
            x = self.rms_norm(h, layer.post_norm)
            h = layer.down.add(self.silu_mul(layer.gate_up, x), h)
        return self.rms_norm(h, self.final_norm)

    def fused_decode(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        meta: AttentionMetadata,
        kv_cache: torch.Tensor,
    ) -> torch.Tensor:
        """``forward`` for a step of decode rows, one compiled call per layer (float32)."""
        fused = self.fused
        groups = meta.decode_groups
        tables = [g.blocks.view(g.row_end - g.row_start, -1) for g in groups]
        width = max(t.shape[1] for t in tables)
        table = torch.cat([F.pad(t, (0, width - t.shape[1])) for t in tables])
        lens = torch.cat([g.context_lens for g in groups])
        h = F.embedding(input_ids, self.embed).float()
        scale = self.head_dim**-0.5
        for i, layer in enumerate(self.layers):
            input_norm, post_norm = fused.norms[i]
            kernels.decode_layer(
                h, input_norm, post_norm, fused.eps,
                layer.qkv.tensors, layer.qkv.bias, layer.o.tensors, layer.gate_up.tensors,
                layer.down.tensors, fused.cos, fused.sin, positions, self.num_heads,
                self.num_kv_heads, kv_cache[i], meta.slot_mapping, table, lens, scale,
                self.kv_format.is_e5m2,
            )  # fmt: skip
        h = F.rms_norm(h, fused.final_norm.shape, fused.final_norm, fused.eps)
        return h if isinstance(self.lm_head, QuantProjection) else h.to(self.dtype)

    def attention(
        self, q: torch.Tensor, kv: torch.Tensor, kv_layer: torch.Tensor, meta: AttentionMetadata
    ) -> torch.Tensor:
        """q: [T, heads, d]; kv: [T, 2, kv_heads, d] (this step's); returns [T, heads * d].

        kv_layer: [blocks, block_size, 2, kv_heads, d], already holding this step's kv.
        """
        outputs = [self.decode_attention(q, kv_layer, g) for g in meta.decode_groups]
        for chunk in meta.prefills:
            if isinstance(chunk, PrefillGroup):
                outputs.append(self.grouped_prefill_attention(q, kv_layer, chunk))
                continue
            rows = slice(chunk.row_start, chunk.row_end)
            if chunk.context_blocks is None:  # a fresh prompt: its own keys are the context
                context = kv[rows]
            else:
                n = chunk.start + chunk.row_end - chunk.row_start
                context = kv_layer.index_select(0, chunk.context_blocks).flatten(0, 1)[:n]
                context = self.kv_format.decode(context, self.head_dim)
            kc, vc = context.unbind(1)  # [n, kv_heads, d] each
            outputs.append(
                self.prefill_attention(q[rows], kc.transpose(0, 1), vc.transpose(0, 1), chunk.start)
            )
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def _gather(self, kv_layer: torch.Tensor, blocks: torch.Tensor, n: int):
        """The blocks' K and V as [n, kv_heads, L, d] strided views of one gathered copy."""
        kv = self.kv_format.decode(kv_layer.index_select(0, blocks), self.head_dim)
        kv = kv.view(n, -1, 2, self.num_kv_heads, self.head_dim)
        return kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)

    def decode_attention(
        self, q: torch.Tensor, kv_layer: torch.Tensor, group: DecodeGroup
    ) -> torch.Tensor:
        """One token per row against its cached context; returns [n, heads * d].

        GQA without repeating K/V: the query heads that share a KV head are the query rows
        of one attention against it. The fused CPU kernel reads the gathered K and V in
        place and beats two batched matmuls at every decode shape measured (1-64 rows,
        64-4096 keys: up to 4x at 32 rows of 512).
        """
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        n = group.row_end - group.row_start
        if self.decode_kernel:
            out = kernels.paged_decode_attention(
                q[group.row_start : group.row_end].contiguous(),
                kv_layer,
                group.blocks.view(n, -1),
                group.context_lens,
                d**-0.5,
                e5m2=self.kv_format.is_e5m2,
            )
            return out.view(n, hq * d)
        qd = q[group.row_start : group.row_end].reshape(n, hkv, hq // hkv, d)
        kd, vd = self._gather(kv_layer, group.blocks, n)  # [n, kv_heads, L, d]
        out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=group.bias)
        return out.reshape(n, hq * d)

    def grouped_prefill_attention(
        self, q: torch.Tensor, kv_layer: torch.Tensor, g: PrefillGroup
    ) -> torch.Tensor:
        """Short prompt chunks of several sequences in one padded batch; [rows, heads * d]."""
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        group, n, length = hq // hkv, g.num_seqs, g.max_len
        qg = q[g.row_start : g.row_end].index_select(0, g.query_rows)  # [n * length, hq, d]
        # [n, kv_heads, length * group, d]: the query heads sharing a KV head are extra rows.
        qd = qg.view(n, length, hkv, group, d).transpose(1, 2).reshape(n, hkv, -1, d)
        kd, vd = self._gather(kv_layer, g.blocks, n)  # [n, kv_heads, L, d]
        out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=g.bias)
        out = out.view(n, hkv, length, group, d).transpose(1, 2).reshape(n * length, hq * d)
        return out.index_select(0, g.valid)

    def prefill_attention(
        self, q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, start: int
    ) -> torch.Tensor:
        """Causal attention of a chunk at position ``start`` over its context.

        q: [n, heads, d]; kc, vc: [kv_heads, start + n, d]; returns [n, heads * d].
        The fused CPU kernel (GQA by broadcast, no K/V repeat) is 2-7x faster here than
        blocked matmuls and bounds its own memory. A chunk after a cached prefix needs an
        explicit mask (the kernel's causal mask ignores the offset): its queries go in
        blocks, so the mask stays [block, context].
        """
        hq, d = self.num_heads, self.head_dim
        n = q.shape[0]
        qd = q.transpose(0, 1).unsqueeze(0)  # [1, heads, n, d]
        kd, vd = kc.unsqueeze(0), vc.unsqueeze(0)  # [1, kv_heads, start + n, d]
        if start == 0:
            out = F.scaled_dot_product_attention(qd, kd, vd, is_causal=True, enable_gqa=True)
        else:
            key_pos = torch.arange(start + n, device=q.device)
            out = torch.empty_like(qd)
            for a in range(0, n, PREFILL_QUERY_BLOCK):
                b = min(n, a + PREFILL_QUERY_BLOCK)
                visible = start + b  # keys the block's last query sees
                q_pos = torch.arange(start + a, start + b, device=q.device)
                seen = key_pos[:visible].unsqueeze(0) <= q_pos.unsqueeze(1)  # [qb, visible]
                out[:, :, a:b] = F.scaled_dot_product_attention(
                    qd[:, :, a:b],
                    kd[:, :, :visible],
                    vd[:, :, :visible],
                    attn_mask=seen,
                    enable_gqa=True,
                )
        return out[0].transpose(0, 1).reshape(n, hq * d)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: [N, hidden] (already normed) -> [N, vocab] fp32."""
        return self.lm_head(hidden).float()
