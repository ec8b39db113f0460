"""The compiled RMSNorm and rotary embedding against their PyTorch forms (the forward of a
prefill chunk or a large decode step calls them between the matmuls)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inference import kernels

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    # bf16: the inputs' and the output's own rounding (the kernel computes in float32)
    return {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 3e-2, "rtol": 2e-2}


def rope_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF's x * cos + rotate_half(x) * sin in float32, sin carrying rotate_half's sign."""
    x = x.float()
    return x * cos.unsqueeze(1) + x.roll(x.shape[-1] // 2, dims=-1) * sin.unsqueeze(1)


def rotary_tables(positions: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    angles = torch.outer(torch.arange(positions).float(), inv_freq).repeat(1, 2)
    sin = angles.sin()
    sin[:, : d // 2] *= -1
    return angles.cos().contiguous(), sin.contiguous()


@needs_kernel
@DTYPES
@pytest.mark.parametrize("rows", [1, 5, 300], ids=lambda r: f"{r}rows")
def test_rms_norm_equals_torch(dtype: torch.dtype, rows: int) -> None:
    gen = torch.Generator().manual_seed(rows)
    x = (torch.randn(rows, 576, generator=gen) * 3).to(dtype)
    weight = (torch.rand(576, generator=gen) + 0.5).to(dtype)
    out = kernels.rms_norm(x, weight, 1e-5)
    expected = F.rms_norm(x.float(), weight.shape, weight.float(), 1e-5)
    assert out.dtype == dtype and out.shape == x.shape
    torch.testing.assert_close(out.float(), expected, **tolerance(dtype))


@needs_kernel
def test_rms_norm_takes_any_leading_shape_and_refuses_a_wrong_weight() -> None:
    x = torch.randn(2, 3, 64)
    weight = torch.rand(64)
    expected = F.rms_norm(x, weight.shape, weight, 1e-6)
    torch.testing.assert_close(kernels.rms_norm(x, weight, 1e-6), expected)
    assert kernels.rms_norm(torch.empty(0, 64), weight, 1e-6).shape == (0, 64)
    with pytest.raises(RuntimeError, match="weight must be"):
        kernels.rms_norm(x, torch.rand(32), 1e-6)


@needs_kernel
@DTYPES
@pytest.mark.parametrize("rows", [1, 3, 200], ids=lambda r: f"{r}rows")
def test_silu_mul_equals_torch(dtype: torch.dtype, rows: int) -> None:
    gen = torch.Generator().manual_seed(rows)
    gate_up = (torch.randn(rows, 2 * 96, generator=gen) * 4).to(dtype)
    gate, up = gate_up.float().chunk(2, dim=-1)
    out = kernels.silu_mul(gate_up)
    assert out.dtype == dtype and out.shape == (rows, 96)
    torch.testing.assert_close(out.float(), F.silu(gate) * up, **tolerance(dtype))
    with pytest.raises(RuntimeError, match="even last dimension"):
        kernels.silu_mul(torch.randn(2, 7))


@needs_kernel
@DTYPES
@pytest.mark.parametrize("d", [16, 64, 128])
def test_rope_rotates_the_first_heads_in_place_and_leaves_the_rest(
    dtype: torch.dtype, d: int
) -> None:
    gen = torch.Generator().manual_seed(d)
    tokens, q_heads, kv_heads = 70, 6, 2
    qkv = torch.randn(tokens, q_heads + 2 * kv_heads, d, generator=gen).to(dtype)
    before = qkv.clone()
    cos, sin = rotary_tables(4096, d)
    positions = torch.randint(0, 4096, (tokens,), generator=gen)
    kernels.rope_(qkv, q_heads + kv_heads, cos, sin, positions)
    rotated = before[:, : q_heads + kv_heads]
    expected = rope_reference(rotated, cos[positions], sin[positions])
    torch.testing.assert_close(qkv[:, : q_heads + kv_heads].float(), expected, **tolerance(dtype))
    assert torch.equal(qkv[:, q_heads + kv_heads :], before[:, q_heads + kv_heads :])  # v


@needs_kernel
def test_rope_refuses_positions_beyond_its_tables() -> None:
    cos, sin = rotary_tables(8, 16)
    qkv = torch.randn(2, 3, 16)
    with pytest.raises(RuntimeError, match="out of range"):
        kernels.rope_(qkv, 2, cos, sin, torch.tensor([3, 8]))
    with pytest.raises(RuntimeError, match="contiguous"):
        kernels.rope_(qkv.transpose(0, 1), 2, cos, sin, torch.tensor([0, 1, 2]))
