"""Quality of a quantized KV cache on the bundled model: teacher-forced against float32.

The measure is the weights' (test_quant_quality.py) applied to the cache: float32 weights,
each answer token read as a decode step over a float32 cache and over the dtype measured
(``bench.kv_quality``). Bounds per dtype, on 6 chat prompts x 24 answer tokens (23 decode
positions each): top-1 agreement with the float32 cache at least, mean |delta logprob| of
the answer token and mean KL(float32 cache || measured) at most. The figures are printed.
"""

from __future__ import annotations

import pytest

from bench.kv_quality import PROMPTS, QualityMeter, float32_model, greedy_answers
from inference.config import ModelConfig
from inference.model.loader import load_model

NEW_TOKENS = 24
# (min top-1 agreement, max mean |dlogprob|, max mean KL in nats). Measured on 3 of these
# prompts x 12 tokens: int8 top-1 1.000, mean |dlogprob| 0.020 (max 0.081), KL 0.0008;
# fp8_e4m3fn 0.970, 0.045 (max 0.22), KL 0.0041; fp8_e5m2 0.909, 0.113 (max 0.44), KL 0.019.
BOUNDS = {
    "int8": (0.95, 0.04, 0.003),
    "fp8_e4m3fn": (0.90, 0.10, 0.02),
    "fp8_e5m2": (0.85, 0.20, 0.05),
}


@pytest.fixture(scope="module")
def meter() -> QualityMeter:
    loaded = load_model(ModelConfig(dtype="float32", quantize="none"))
    return QualityMeter(float32_model(loaded), greedy_answers(loaded, PROMPTS, NEW_TOKENS))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BOUNDS))
def test_quantized_cache_agrees_with_the_float32_cache(meter, name):
    quality = meter.measure(name)
    print(f"\n{name}: {quality.describe()}")
    min_top1, max_delta, max_kl = BOUNDS[name]
    assert quality.top1 >= min_top1
    assert quality.mean_delta <= max_delta
    assert quality.mean_kl <= max_kl


@pytest.mark.slow
def test_the_float32_cache_measured_against_itself_is_exact(meter):
    quality = meter.measure("auto")  # the model computes in float32: the same cache
    assert quality.top1 == 1.0 and quality.max_delta == 0.0
