"""bench.prefill's prompts and table, without starting a server."""

from __future__ import annotations

import pytest

from bench.prefill import PrefillRow, format_rows, prompt_of, word_vocabulary
from tests.support.tiny_model import bundled_tokenizer_path


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_tokenizer_path())


@pytest.mark.parametrize("length", [1, 512, 2047])
def test_a_prompt_has_exactly_the_tokens_asked_for(tokenizer, length):
    words = word_vocabulary(tokenizer)
    text = prompt_of(tokenizer, words, length, seed=length)
    assert len(tokenizer.encode(text, add_special_tokens=False)) == length


def test_prompts_of_two_seeds_share_no_prefix_a_cache_could_serve(tokenizer):
    words = word_vocabulary(tokenizer)
    a, b = (tokenizer.encode(prompt_of(tokenizer, words, 64, seed)) for seed in (1, 2))
    assert a[:4] != b[:4]


def test_the_table_gives_each_length_and_load_its_ratio_and_streams_latency():
    rows = [
        PrefillRow("ours (auto)", 512, 0, 512, 0.5),
        PrefillRow("llama-server (Q4_1)", 512, 0, 512, 2.0),
        PrefillRow("ours (auto)", 512, 8, 512, 1.0, itl=[0.01, 0.02, 0.03]),
        PrefillRow("llama-server (Q4_1)", 512, 8, 0, 3.0, error="HTTP 500: boom"),
    ]
    lines = format_rows(rows).splitlines()
    assert len(lines) == 4  # header, rule, one line per (length, load)
    assert "| 512 | 0 | 1,024 (0.50) | 256 (2.00) | 4.00x |" in lines[2]
    assert "error: HTTP 500" in lines[3] and "| - |" in lines[3]  # no ratio against an error
    assert "20/" in lines[3]  # the streams' ITL p50 in ms
