"""The bundled SmolLM2-135M-Instruct through the engine, at every dtype and quantization the
CLI offers, and with the CPU forced down to AVX2 (where oneDNN's bf16 path does not run)."""

from __future__ import annotations

import pytest

from inference.config import EngineConfig, ModelConfig
from inference.engine.engine import Engine
from inference.model.loader import load_model
from tests.inference.factories import make_request, run_to_completion

FORMS = [  # (dtype, quantize, forced ISA)
    ("bfloat16", "none", None),
    ("float16", "none", None),
    ("float32", "none", None),
    ("auto", "auto", None),
    ("float32", "int8", None),
    ("float32", "int4", None),
    ("bfloat16", "none", "avx2"),
    ("float16", "none", "avx2"),
    ("auto", "auto", "avx2"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dtype", "quantize", "tier"),
    FORMS,
    indirect=["tier"],
    ids=[f"{d}-{q}" + (f"-{i}" if i else "") for d, q, i in FORMS],
)
def test_bundled_model_answers_a_chat_question_coherently(dtype, quantize, tier):
    loaded = load_model(ModelConfig(dtype=dtype, quantize=quantize))
    if quantize in ("int8", "int4"):
        assert loaded.quantize == quantize
    engine = Engine(loaded, EngineConfig(max_batch_total_tokens=8192))
    prompt = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is Deep Learning?"}],
        add_generation_prompt=True,
        tokenize=True,
    )
    if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):
        prompt = prompt["input_ids"]
    request = make_request(list(prompt), max_new_tokens=60)
    engine.add_request(request)
    events = run_to_completion(engine)[request.request_id]
    text = "".join(e.text for e in events)
    assert "learning" in text.lower()
    words = text.split()
    assert len(words) >= 10
    assert sum(w.isascii() for w in words) / len(words) > 0.9
    assert events[-1].finish_reason is not None
