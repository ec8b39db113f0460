"""Every dtype on every CPU: the linear path each dtype takes, with the ISA forced lower.

``INFERENCE_CPU_ISA=avx2`` makes this machine behave as an AVX2-only CPU for every choice
the server makes (oneDNN's bf16 prepack needs AVX-512 and fails at load elsewhere), so the
fallbacks run here whatever the CPU.
"""

from __future__ import annotations

import pytest
import torch

from inference.config import EngineConfig
from inference.cpu import ISA_ENV, Isa, LinearPath, cpu_info
from inference.engine.engine import Engine
from inference.model.linear import DenseProjection
from inference.model.loader import fastest_cpu_dtype, pick_dtype
from tests.inference.factories import (
    SMALL_LIMITS,
    make_request,
    run_to_completion,
    token_ids,
)
from tests.support.tiny_model import build_tiny_llama

PROMPT = list(range(100, 117))
NEW_TOKENS = 8


@pytest.fixture
def force_isa(monkeypatch):
    """Set INFERENCE_CPU_ISA for one test (the detection is read once, so reset it)."""

    def force(name: str | None):
        if name is None:
            monkeypatch.delenv(ISA_ENV, raising=False)
        else:
            monkeypatch.setenv(ISA_ENV, name)
        cpu_info.cache_clear()
        return cpu_info()

    yield force
    monkeypatch.delenv(ISA_ENV, raising=False)
    cpu_info.cache_clear()


def test_a_forced_avx2_cpu_takes_the_portable_bf16_path(force_isa):
    info = force_isa("avx2")
    assert info.isa == min(Isa.AVX2, info.hardware_isa)
    assert not info.native_bf16
    assert info.linear_path(torch.bfloat16) == LinearPath.DENSE
    assert info.linear_path(torch.float16) == LinearPath.DENSE
    if torch.backends.mkldnn.is_available():
        assert info.linear_path(torch.float32) == LinearPath.ONEDNN


def test_the_cap_never_raises_the_hardware_tier(force_isa):
    hardware = force_isa(None).hardware_isa
    assert force_isa("amx").isa == hardware
    assert force_isa("baseline").isa == Isa.BASELINE
    assert force_isa("baseline").forced == (hardware != Isa.BASELINE)


def test_an_unknown_isa_name_is_refused_with_the_choices(force_isa):
    with pytest.raises(ValueError, match="avx2"):
        force_isa("avx1024")


def _greedy(loaded) -> list[int]:
    engine = Engine(loaded, SMALL_LIMITS)
    request = make_request(PROMPT, max_new_tokens=NEW_TOKENS, ignore_eos=True)
    engine.add_request(request)
    return token_ids(run_to_completion(engine)[request.request_id])


def _hf_greedy(model) -> list[int]:
    out = model.generate(
        torch.tensor([PROMPT]),
        max_new_tokens=NEW_TOKENS,
        min_new_tokens=NEW_TOKENS,
        do_sample=False,
    )
    return out[0, len(PROMPT) :].tolist()


@pytest.mark.parametrize("isa", ["hardware", "avx2", "baseline"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_every_dtype_generates_under_every_isa(force_isa, isa, dtype):
    info = force_isa(None if isa == "hardware" else isa)
    loaded = build_tiny_llama(dtype=dtype)
    tokens = _greedy(loaded)
    assert len(tokens) == NEW_TOKENS
    engine = Engine(
        loaded,
        EngineConfig(max_batch_total_tokens=4096, max_total_tokens=512, max_input_tokens=400),
    )
    qkv = engine.runner.model.layers[0].qkv
    assert isinstance(qkv, DenseProjection)
    assert qkv.path == info.linear_path(dtype)
    if dtype == torch.float32:  # fp32 is exact on every path: the same tokens as transformers
        assert tokens == _hf_greedy(build_tiny_llama(dtype=dtype).model)


def test_dtype_auto_is_measured_among_the_paths_this_cpu_has(force_isa, caplog):
    force_isa("avx2")
    caplog.set_level("INFO", logger="inference.model.loader")
    chosen = pick_dtype("auto", torch.device("cpu"))
    assert chosen in (torch.float32, torch.bfloat16)
    assert "dtype auto on AVX2" in caplog.text or cpu_info().hardware_isa < Isa.AVX2
    assert fastest_cpu_dtype([(64, 32)]) in (torch.float32, torch.bfloat16)
    assert pick_dtype("float16", torch.device("cpu")) == torch.float16
