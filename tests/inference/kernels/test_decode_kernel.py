"""The compiled paged decode attention against PyTorch's SDPA over a gathered copy.

The kernel is built by ``make setup`` (and on first use); on a machine without a C++
toolchain the model keeps the SDPA path, which the same greedy tests cover.
"""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from inference import kernels
from inference.model.llama import LlamaPagedModel

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")
BLOCK_SIZE = 16


def reference(q, kv, tables, lens):
    """fp32 SDPA of each row over its blocks, gathered and cut to its length."""
    out = []
    for i in range(q.shape[0]):
        n = int(lens[i])
        ctx = kv[tables[i]].flatten(0, 1)[:n].float()  # [n, 2, kv_heads, d]
        k, v = ctx[:, 0].transpose(0, 1), ctx[:, 1].transpose(0, 1)
        qi = q[i].float().unsqueeze(1)  # [heads, 1, d]
        o = F.scaled_dot_product_attention(qi, k, v, enable_gqa=True)  # [heads, 1, d]
        out.append(o.squeeze(1))
    return torch.stack(out)


def random_problem(dtype, head_dim, group, lengths, kv_heads=2, num_blocks=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    kv = torch.randn(num_blocks, BLOCK_SIZE, 2, kv_heads, head_dim, generator=gen).to(dtype)
    q = torch.randn(len(lengths), kv_heads * group, head_dim, generator=gen).to(dtype)
    max_blocks = -(-max(lengths) // BLOCK_SIZE)
    # Scattered, non-overlapping blocks per row; padding entries point at block 0.
    order = torch.randperm(num_blocks, generator=gen).tolist()
    tables = torch.zeros(len(lengths), max_blocks, dtype=torch.long)
    for i, n in enumerate(lengths):
        used = -(-n // BLOCK_SIZE)
        tables[i, :used] = torch.tensor([order.pop() for _ in range(used)])
    return q, kv, tables, torch.tensor(lengths)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("head_dim,group", [(16, 2), (64, 3), (64, 1), (128, 4), (64, 8)], ids=str)
def test_kernel_equals_sdpa_for_rows_of_every_length(dtype, head_dim, group):
    # 1 key, a partial block, exact blocks, and rows long enough to be split and merged.
    lengths = [1, 7, 16, 33, 160, 257, 700, 1025]
    q, kv, tables, lens = random_problem(dtype, head_dim, group, lengths)
    out = kernels.paged_decode_attention(q, kv, tables, lens, head_dim**-0.5)
    expected = reference(q, kv, tables, lens)
    assert out.dtype == dtype and out.shape == q.shape
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2  # bf16: the output's own rounding
    torch.testing.assert_close(out.float(), expected, atol=tolerance, rtol=tolerance)


@needs_kernel
@pytest.mark.parametrize("length", [40, 64, 65, 200, 1000])
def test_a_lone_row_is_split_across_the_threads_and_merged(length):
    """Batch 1: the row's keys are shared among the threads (from 64 keys on), and the
    partial softmaxes merge to SDPA's answer at every thread count."""
    q, kv, tables, lens = random_problem(torch.float32, 64, 3, [length], seed=length)
    expected = reference(q, kv, tables, lens)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 3, 4):
            torch.set_num_threads(threads)
            out = kernels.paged_decode_attention(q, kv, tables, lens, 64**-0.5)
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    finally:
        torch.set_num_threads(before)


@needs_kernel
def test_kernel_result_does_not_depend_on_the_thread_count():
    q, kv, tables, lens = random_problem(torch.float32, 64, 3, [5, 300, 90, 600, 12])
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(kernels.paged_decode_attention(q, kv, tables, lens, 0.125))
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(results[0], results[1], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(results[0], results[2], atol=1e-6, rtol=1e-6)


@needs_kernel
@pytest.mark.parametrize(
    "change,message",
    [
        (lambda q, kv, t, n: (q, kv, t.fill_(10_000), n), "block id out of range"),
        (lambda q, kv, t, n: (q, kv, t, n.fill_(0)), "bad context length"),
        (lambda q, kv, t, n: (q, kv, t, n.fill_(10_000)), "bad context length"),
        (lambda q, kv, t, n: (q.half(), kv.half(), t, n), "unsupported"),
        (
            lambda q, kv, t, n: (q[:, :, :48].contiguous(), kv[..., :48].contiguous(), t, n),
            "unsupported",
        ),
    ],
    ids=["block-id", "empty-row", "too-long", "float16", "head-size-48"],
)
def test_kernel_rejects_what_it_cannot_read_safely(change, message):
    args = change(*random_problem(torch.float32, 64, 3, [20, 40]))
    with pytest.raises(RuntimeError, match=message):
        kernels.paged_decode_attention(*args, 0.125)


def test_supports_only_cpu_fp32_bf16_and_compiled_shapes():
    cpu = torch.device("cpu")
    assert not kernels.supports(torch.device("cuda"), torch.bfloat16, 64, 3)
    assert not kernels.supports(cpu, torch.float16, 64, 3)
    assert not kernels.supports(cpu, torch.float32, 80, 3)
    assert not kernels.supports(cpu, torch.float32, 64, 9)
    assert kernels.supports(cpu, torch.bfloat16, 64, 3) == kernels.available()


@pytest.mark.skipif(
    shutil.which("c++") is None or shutil.which("ninja") is None, reason="no C++ toolchain"
)
def test_kernel_builds_where_a_toolchain_exists():
    assert kernels.available()


def test_disabled_kernels_fall_back(monkeypatch, tiny):
    monkeypatch.setenv("INFERENCE_KERNELS", "0")
    kernels.available.cache_clear()
    try:
        model = LlamaPagedModel(tiny.model, 64)
        assert not model.decode_kernel
    finally:
        monkeypatch.delenv("INFERENCE_KERNELS")
        kernels.available.cache_clear()
