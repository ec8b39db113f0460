"""The KV cache's storage formats: what a row costs, how close it comes back, what fits."""

from __future__ import annotations

import pytest
import torch

from inference.cli import parse_args
from inference.config import ModelConfig
from inference.model.kv_format import INT8_MAX, blocks_in_same_memory, kv_format
from inference.model.kv_tensors import KVCache

QUANTIZED = ["int8", "fp8_e4m3fn", "fp8_e5m2"]


def rows(*shape: int, seed: int = 0) -> torch.Tensor:
    """Keys-like rows: mostly small values and a few large channels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen)
    x[..., 3] *= 20  # an outlier channel, as real keys have
    return x


def test_int8_rows_keep_every_value_within_half_a_step_of_their_row_scale():
    x = rows(50, 2, 3, 64)
    fmt = kv_format("int8", torch.float32)
    stored = fmt.encode(x)
    assert stored.dtype == torch.int8 and stored.shape == (50, 2, 3, 66)
    back = fmt.decode(stored, 64)
    step = x.abs().amax(-1, keepdim=True) / INT8_MAX
    # the step is rounded to float16 (relative 2**-11), which scales a code of up to 127
    assert ((back - x).abs() <= step * (0.5 + INT8_MAX * 2**-11) + 1e-7).all()


def test_an_all_zero_row_comes_back_as_zeros():
    fmt = kv_format("int8", torch.bfloat16)
    back = fmt.decode(fmt.encode(torch.zeros(4, 16)), 16)
    assert back.dtype == torch.bfloat16 and not back.any()


@pytest.mark.parametrize("name,relative", [("fp8_e4m3fn", 2**-4), ("fp8_e5m2", 2**-3)])
def test_fp8_rows_round_each_value_to_its_format(name, relative):
    x = rows(40, 64)
    fmt = kv_format(name, torch.float32)
    stored = fmt.encode(x)
    assert stored.dtype == torch.uint8 and stored.shape == x.shape
    back = fmt.decode(stored, 64)
    # normal values: within half an ulp (3 or 2 mantissa bits); tiny ones: an absolute step
    assert ((back - x).abs() <= x.abs() * relative + 2**-9).all()


def test_fp8_saturates_instead_of_overflowing():
    big = torch.tensor([[1e6, -1e6]])
    for name, top in (("fp8_e4m3fn", 448.0), ("fp8_e5m2", 57344.0)):
        fmt = kv_format(name, torch.float32)
        assert fmt.decode(fmt.encode(big), 2).tolist() == [[top, -top]]


def test_fp8_is_tgis_alias_for_e4m3fn_and_auto_keeps_the_model_dtype():
    assert kv_format("fp8", torch.bfloat16).name == "fp8_e4m3fn"
    # what a runner records as served reads back as the same format
    assert kv_format("bfloat16", torch.bfloat16) == kv_format("auto", torch.bfloat16)
    auto = kv_format("auto", torch.bfloat16)
    assert auto.name == "bfloat16" and not auto.is_quantized
    x = torch.randn(3, 16, dtype=torch.bfloat16)
    assert torch.equal(auto.decode(auto.encode(x), 16), x)
    with pytest.raises(ValueError):
        kv_format("int4", torch.float32)


@pytest.mark.parametrize("head_dim", [64, 128])
def test_a_quantized_cache_fits_about_twice_bf16s_and_four_times_float32s_blocks(head_dim):
    shapes = [(3, head_dim)] * 30
    for model_dtype, factor in ((torch.bfloat16, 2), (torch.float32, 4)):
        for name in QUANTIZED:
            fmt = kv_format(name, model_dtype)
            blocks = blocks_in_same_memory(1000, shapes, fmt)
            # fp8: exactly; int8 pays its float16 scale per row of head_dim values
            expected = factor * 1000 * head_dim // fmt.width(head_dim)
            assert blocks == expected
            assert blocks >= factor * 1000 * 0.96
            plain = KVCache(30, 1000, 32, 3, head_dim, model_dtype, torch.device("cpu"))
            quantized = KVCache(30, blocks, 32, 3, head_dim, model_dtype, torch.device("cpu"), fmt)
            assert quantized.num_bytes <= plain.num_bytes  # in the same memory
        assert blocks_in_same_memory(1000, shapes, kv_format("auto", model_dtype)) == 1000


def test_writes_land_in_their_slots_in_the_stored_format():
    fmt = kv_format("int8", torch.float32)
    cache = KVCache(1, 4, 8, 2, 16, torch.float32, torch.device("cpu"), fmt)
    kv = rows(3, 2, 2, 16)
    slots = torch.tensor([0, 9, 31])
    fmt.write(cache.kv[0], slots, kv)
    flat = cache.kv[0].view(-1, 2, 2, 18)
    assert torch.equal(flat[slots], fmt.encode(kv))
    assert not flat[1].any()  # untouched slots stay empty


def test_the_flag_and_its_environment_variable_reach_the_model_config():
    config, _ = parse_args(["--kv-cache-dtype", "int8"], environ={})
    assert config.model.kv_cache_dtype == "int8"
    config, _ = parse_args([], environ={"KV_CACHE_DTYPE": "fp8_e5m2"})
    assert config.model.kv_cache_dtype == "fp8_e5m2"
    assert parse_args([], environ={})[0].model.kv_cache_dtype == "auto"
    with pytest.raises(ValueError, match="kv_cache_dtype"):
        ModelConfig(kv_cache_dtype="int4")
