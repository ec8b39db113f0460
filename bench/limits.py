"""The machine's limits for a decode step: memory bandwidth and the model's matmul time.

At batch 1 every decode step reads all the weights once, so the step can never be faster than
`weight bytes / bandwidth`; these figures say how close a server gets to that floor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class Limits:
    bandwidth_gb_s: float
    weight_mb: dict[str, float]  # dtype -> MB of linear weights
    matmul_ms: dict[tuple[str, int], float]  # (dtype, batch) -> ms per step (all linears)


def measure_bandwidth(num_bytes: int = 512 * 2**20, repeats: int = 5) -> float:
    """GB/s of a large tensor copy (read + write counted)."""
    src = torch.empty(num_bytes // 4, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * num_bytes / best / 1e9


def linear_shapes(model_dir: Path) -> list[tuple[int, int]]:
    """(out, in) of every matmul in one forward of a Llama-style model, lm_head included."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_dir)
    hidden, inter = cfg.hidden_size, cfg.intermediate_size
    head_dim = getattr(cfg, "head_dim", None) or hidden // cfg.num_attention_heads
    q = cfg.num_attention_heads * head_dim
    kv = cfg.num_key_value_heads * head_dim
    per_layer = [(q + 2 * kv, hidden), (hidden, q), (2 * inter, hidden), (hidden, inter)]
    return per_layer * cfg.num_hidden_layers + [(cfg.vocab_size, hidden)]


def measure_matmuls(
    model_dir: Path, dtypes: tuple[str, ...] = ("float32", "bfloat16"), batches=(1, 32)
) -> tuple[dict[str, float], dict[tuple[str, int], float]]:
    shapes = linear_shapes(model_dir)
    weight_mb: dict[str, float] = {}
    timings: dict[tuple[str, int], float] = {}
    for name in dtypes:
        dtype = getattr(torch, name)
        weights = [torch.randn(o, i, dtype=dtype) for o, i in shapes]
        weight_mb[name] = sum(w.numel() * w.element_size() for w in weights) / 2**20
        for batch in batches:
            inputs = {i: torch.randn(batch, i, dtype=dtype) for _, i in shapes}
            with torch.inference_mode():
                for w in weights:  # warm-up
                    torch.nn.functional.linear(inputs[w.shape[1]], w)
                best = float("inf")
                for _ in range(3):
                    t0 = time.perf_counter()
                    for w in weights:
                        torch.nn.functional.linear(inputs[w.shape[1]], w)
                    best = min(best, time.perf_counter() - t0)
            timings[(name, batch)] = best * 1000
    return weight_mb, timings


def dense_weight_bytes(model_dir: Path, dtype: str) -> int:
    """Bytes of the linear weights (lm_head included) held as `dtype`: what one batch-1 decode
    step reads when they are not quantized."""
    itemsize = torch.empty(0, dtype=getattr(torch, dtype)).element_size()
    return sum(o * i for o, i in linear_shapes(model_dir)) * itemsize


def gguf_tensor_bytes(path: Path) -> int:
    """Bytes of every tensor stored in a GGUF file, in its own (quantized) formats."""
    import gguf

    return sum(int(t.n_bytes) for t in gguf.GGUFReader(path).tensors)


def floor_line(
    label: str, what: str, weight_bytes: int, bandwidth_gb_s: float, itl_s: float
) -> str:
    """The 1-stream floor (bytes / bandwidth) and how far a measured ITL p50 is above it."""
    floor_s = weight_bytes / (bandwidth_gb_s * 1e9)
    ratio = f"{itl_s / floor_s:.1f}x the floor" if itl_s == itl_s and floor_s else "no ITL"
    return (
        f"{label}: {what}, {weight_bytes / 2**20:.0f} MB: 1-stream floor = bytes / bandwidth = "
        f"{floor_s * 1000:.2f} ms; ITL p50 at 1 stream {itl_s * 1000:.1f} ms = {ratio}"
    )


def measure(model_dir: Path) -> Limits:
    weight_mb, matmul_ms = measure_matmuls(model_dir)
    return Limits(measure_bandwidth(), weight_mb, matmul_ms)


def format_limits(limits: Limits) -> str:
    lines = [f"memory bandwidth (large tensor copy): {limits.bandwidth_gb_s:.1f} GB/s"]
    for dtype, mb in limits.weight_mb.items():
        batch1 = limits.matmul_ms.get((dtype, 1))
        streamed = f", {mb * 2**20 / batch1 / 1e6:.1f} GB/s streamed by matmuls" if batch1 else ""
        parts = [f"{dtype}: weights {mb:.0f} MB{streamed}"]
        for (name, batch), ms in sorted(limits.matmul_ms.items()):
            if name == dtype:
                parts.append(
                    f"matmuls at batch {batch}: {ms:.1f} ms ({batch / ms * 1000:.0f} tok/s)"
                )
        lines.append("; ".join(parts))
    return "\n".join(lines)


if __name__ == "__main__":
    from inference.model.source import ensure_bundled_model

    print(format_limits(measure(ensure_bundled_model())))
