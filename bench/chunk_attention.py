"""`python -m bench.chunk_attention`: what one layer's attention costs a prompt chunk that
lands deep into a long prompt, the step that decides how much a long prompt slows the streams
decoding beside it.

For the bundled model's shapes (9 query and 3 KV heads of 64), a chunk of 4, 16 or 64 tokens
at 1,000, 2,000 and 8,000 positions, in bf16 and float32, two ways over the same paged cache:
the path the engine takes (gather the context's blocks, then PyTorch's SDPA with the causal
mask) and the paged decode kernel with one query row per chunk token (each row its own context
length: it reads the keys in place, but once per row). Prints ms per layer and the largest
difference between the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from bench.machine import isa_line

HEADS, KV_HEADS, HEAD_DIM, BLOCK = 9, 3, 64, 16
CONTEXTS = (1000, 2000, 8000)
CHUNKS = (4, 16, 64)


def timed_ms(fn: Callable[[], torch.Tensor], reps: int = 20) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - started) / reps * 1000


def gather_and_sdpa(
    q: torch.Tensor, kv: torch.Tensor, table: torch.Tensor, end: int
) -> torch.Tensor:
    """The engine's path for a chunk after a cached prefix: [n, heads, d]."""
    n = q.shape[0]
    context = kv.index_select(0, table).flatten(0, 1)[:end]
    keys, values = (t.transpose(0, 1).unsqueeze(0) for t in context.unbind(1))
    seen = torch.arange(end).unsqueeze(0) <= torch.arange(end - n, end).unsqueeze(1)
    out = F.scaled_dot_product_attention(
        q.transpose(0, 1).unsqueeze(0), keys, values, attn_mask=seen, enable_gqa=True
    )
    return out[0].transpose(0, 1)


def main() -> None:
    from inference import kernels

    print(isa_line())
    torch.manual_seed(0)
    for dtype in (torch.bfloat16, torch.float32):
        for end in CONTEXTS:
            blocks = end // BLOCK + 2
            kv = torch.randn(blocks + 50, BLOCK, 2, KV_HEADS, HEAD_DIM).to(dtype)
            table = torch.randperm(blocks + 50)[:blocks]
            for n in CHUNKS:
                q = torch.randn(n, HEADS, HEAD_DIM).to(dtype)
                tables = table.unsqueeze(0).expand(n, -1).contiguous()
                lens = torch.arange(end - n + 1, end + 1)
                engine = partial(gather_and_sdpa, q, kv, table, end)
                line = f"{str(dtype)[6:]:9s} {n:3d} tokens at {end:5d}: gather+SDPA "
                line += f"{timed_ms(engine):6.3f} ms"
                if kernels.available():
                    scale = HEAD_DIM**-0.5
                    per_row = partial(kernels.paged_decode_attention, q, kv, tables, lens, scale)
                    diff = (engine().float() - per_row().float()).abs().max().item()
                    line += f", decode kernel per row {timed_ms(per_row):6.3f} ms"
                    line += f" (max |diff| {diff:.1e})"
                print(line, flush=True)


if __name__ == "__main__":
    main()
