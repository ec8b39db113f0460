"""The bundled SmolLM2-135M-Instruct through the engine, in bf16 where the CPU supports it."""

from __future__ import annotations

import pytest

from inference.config import EngineConfig, ModelConfig
from inference.engine import Engine
from inference.loader import load_model
from tests.inference.engine.factories import make_request, run_to_completion


@pytest.mark.slow
def test_bundled_model_answers_a_chat_question_coherently():
    loaded = load_model(ModelConfig(dtype="bfloat16"))
    engine = Engine(loaded, EngineConfig())
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
