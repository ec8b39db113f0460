"""Prompts past 4,096 tokens, served with the default limits of an 8,192-position model, against
transformers on the same weights (a tiny random Llama, float32).

Three ways a long prompt reaches the cache: in one prefill (the default budget takes the whole
context), in chunks after a cached prefix (a smaller budget), and chunked while streams
decode (the scheduler cuts it into chunks), then reused by a follow-up. Each must give
``generate``'s greedy tokens; in the first two every prompt token's logprob must match the full
forward's too, so every position's attention over its long prefix is checked. At the
hardware's CPU tier and with AVX2 forced.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inference.cli import engine_config_for, parse_args
from inference.engine.engine import Engine
from inference.engine.scheduler import SchedulerConfig
from inference.types import GenerationEvent
from tests.inference.factories import make_request, run_to_completion
from tests.support.tiny_model import build_tiny_llama

POSITIONS = 8192
PROMPT_TOKENS = 5000  # past the old 4,096-token default
NEW_TOKENS = 6
TOLERANCE = 1e-4
TIERS = pytest.mark.parametrize("tier", [None, "avx2"], ids=["native", "avx2"], indirect=True)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matmuls gain nothing from threads that wait on other test processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def long_prompt(seed: int, n: int = PROMPT_TOKENS) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(10, 4000, (n,), generator=generator).tolist()


def reference(model, prompt: list[int]) -> tuple[list[int], list[float]]:
    """``generate``'s greedy tokens, and the full forward's logprob of each prompt token."""
    ids = torch.tensor([prompt])
    out = model.generate(
        ids, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    logits = model(ids).logits[0, :-1].float()
    logprobs = logits.log_softmax(-1).gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1)
    return out[0, len(prompt) :].tolist(), logprobs.tolist()


def check(events: list, model, prompt: list[int], prompt_logprobs: bool = True) -> None:
    tokens = [e.token.id for e in events if isinstance(e, GenerationEvent)]
    expected_tokens, expected_logprobs = reference(model, prompt)
    assert tokens == expected_tokens
    if not prompt_logprobs:
        return
    prefill = events[0].prefill
    assert len(prefill) == len(prompt)
    got = torch.tensor([t.logprob for t in prefill[1:]])
    assert torch.allclose(got, torch.tensor(expected_logprobs), atol=TOLERANCE, rtol=0)


def engine_for(loaded, **limits) -> Engine:
    _, args = parse_args([], environ={})
    config = dataclasses.replace(engine_config_for(args, POSITIONS), **limits)
    return Engine(loaded, config, SchedulerConfig.from_engine_config(config))


@pytest.mark.parametrize("budget", [None, 1500], ids=["one-prefill", "chunks-of-1500"])
@torch.inference_mode()
@TIERS
def test_a_long_prompt_matches_transformers(tier, budget) -> None:
    loaded = build_tiny_llama(max_position_embeddings=POSITIONS)
    engine = engine_for(loaded, **({"max_batch_prefill_tokens": budget} if budget else {}))
    assert engine.config.max_input_tokens == POSITIONS - 1
    prompt = long_prompt(1)
    request = make_request(
        prompt, max_new_tokens=NEW_TOKENS, ignore_eos=True, decoder_input_details=True
    )
    engine.add_request(request)
    check(run_to_completion(engine)[request.request_id], loaded.model, prompt)


@torch.inference_mode()
@TIERS
def test_a_long_prompt_chunked_beside_a_decoding_stream_matches_transformers(tier) -> None:
    """The scheduler chunks the prompt while streams decode; then a
    follow-up reuses the long prompt's cached prefix."""
    loaded = build_tiny_llama(max_position_embeddings=POSITIONS)
    engine = engine_for(loaded)
    for first in (100, 200):  # more streams decode than wait: the newcomer is chunked
        engine.add_request(
            make_request(list(range(first, first + 40)), max_new_tokens=400, ignore_eos=True)
        )
    engine.step()  # the streams are decoding before the long prompt arrives
    prompt = long_prompt(2, 4500)
    request = make_request(prompt, max_new_tokens=NEW_TOKENS, ignore_eos=True)
    engine.add_request(request)
    engine.step()
    seq = engine.states[request.request_id].seq
    assert 0 < seq.num_computed_tokens < len(prompt)  # chunked, not prefilled at once
    results = run_to_completion(engine)
    check(results[request.request_id], loaded.model, prompt, prompt_logprobs=False)

    follow_prompt = [*prompt, 7, 8, 9]  # prompt logprobs would compute it all again
    follow = make_request(follow_prompt, max_new_tokens=NEW_TOKENS, ignore_eos=True)
    engine.add_request(follow)
    follow_seq = engine.states[follow.request_id].seq
    results = run_to_completion(engine)
    assert follow_seq.num_cached_tokens >= 4096
    check(results[follow.request_id], loaded.model, follow_prompt, prompt_logprobs=False)
