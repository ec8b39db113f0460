"""The synchronous Engine over the tiny random Llama: correctness against transformers."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inference.engine.engine import Engine
from inference.engine.scheduler import PROMPT_TOO_LONG_FOR_CACHE
from inference.model.llama import LlamaPagedModel
from inference.model.runner import HFModelRunner, PagedModelRunner
from inference.types import FinishReason, GenerationError, GenerationEvent
from tests.inference.factories import (
    SMALL_LIMITS,
    make_request,
    run_to_completion,
    token_ids,
)

# Varied lengths: tiny, sub-block, several blocks, and longer than the prefill budget (64)
# so it is computed in chunks while the others already decode.
PROMPTS = [
    [1, 5, 9],
    list(range(100, 117)),
    list(range(2000, 2045)),
    [(i * 37) % 40000 + 7 for i in range(150)],
]
NEW_TOKENS = 10


def hf_greedy(model, prompt: list[int], n: int = NEW_TOKENS) -> list[int]:
    out = model.generate(
        torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False
    )
    return out[0, len(prompt) :].tolist()


@pytest.fixture(scope="module")
def expected(tiny) -> list[list[int]]:
    return [hf_greedy(tiny.model, p) for p in PROMPTS]


def test_tiny_engine_uses_the_paged_runner(engine_factory):
    assert isinstance(engine_factory().runner, PagedModelRunner)


@pytest.mark.parametrize(
    "runner", ["paged", "paged-sdpa-decode", "transformers"], ids=lambda name: name
)
def test_greedy_batch_equals_transformers_generate(engine_factory, tiny, expected, runner):
    engine = engine_factory(runner=HFModelRunner(tiny) if runner == "transformers" else None)
    if runner == "paged-sdpa-decode":  # the portable path, as without a C++ toolchain
        engine.runner.model.decode_kernel = False
    requests = [make_request(p, max_new_tokens=NEW_TOKENS, ignore_eos=True) for p in PROMPTS]
    for r in requests:
        engine.add_request(r)
    results = run_to_completion(engine)
    assert [token_ids(results[r.request_id]) for r in requests] == expected


def test_prefix_cache_hit_gives_the_same_greedy_output(engine_factory, tiny, expected):
    engine = engine_factory()
    prompt = PROMPTS[3]
    first = make_request(prompt, max_new_tokens=NEW_TOKENS, ignore_eos=True)
    engine.add_request(first)
    run_to_completion(engine)
    # A chat follow-up resends the history (prompt + answer) plus new tokens.
    follow_prompt = prompt + expected[3] + [11, 12, 13]
    follow = make_request(follow_prompt, max_new_tokens=6, ignore_eos=True)
    engine.add_request(follow)
    seq = engine.states[follow.request_id].seq
    results = run_to_completion(engine)
    # Every position the first request computed: its full blocks and its last, partly
    # filled one (the final answer token was sampled, never fed back).
    assert seq.num_cached_tokens == len(prompt) + NEW_TOKENS - 1
    assert token_ids(results[follow.request_id]) == hf_greedy(tiny.model, follow_prompt, 6)


def test_resent_prompt_computes_only_its_last_token(engine_factory, expected):
    """A regenerated answer (the same prompt again) reuses the finished request's blocks,
    the partly filled one included, and still gives the same greedy output."""
    engine = engine_factory()
    outputs, cached = [], []
    for _ in range(2):
        request = make_request(PROMPTS[2], max_new_tokens=NEW_TOKENS, ignore_eos=True)
        engine.add_request(request)
        seq = engine.states[request.request_id].seq
        outputs.append(token_ids(run_to_completion(engine)[request.request_id]))
        cached.append(seq.num_cached_tokens)
    assert cached == [0, len(PROMPTS[2]) - 1]
    assert outputs == [expected[2], expected[2]]


def test_burst_of_prompts_is_attended_in_one_padded_batch(engine_factory, tiny, monkeypatch):
    """A burst of chat requests (a shared cached prefix, different lengths) is one grouped
    attention call per layer, and each answer still equals transformers' greedy output."""
    calls = []
    grouped = LlamaPagedModel.grouped_prefill_attention
    monkeypatch.setattr(
        LlamaPagedModel,
        "grouped_prefill_attention",
        lambda self, q, kv, group: calls.append(group.num_seqs) or grouped(self, q, kv, group),
    )
    engine = engine_factory(dataclasses.replace(SMALL_LIMITS, max_batch_prefill_tokens=400))
    shared = [(i * 53) % 30000 + 11 for i in range(64)]  # two full cache blocks
    engine.add_request(make_request([*shared, 5], max_new_tokens=1))
    run_to_completion(engine)
    prompts = [shared + list(range(200, 200 + n)) for n in (2, 7, 20, 33)]
    requests = [make_request(p, max_new_tokens=NEW_TOKENS, ignore_eos=True) for p in prompts]
    for r in requests:
        engine.add_request(r)
    results = run_to_completion(engine)
    assert calls and max(calls) == len(prompts)
    for request, prompt in zip(requests, prompts, strict=True):
        assert token_ids(results[request.request_id]) == hf_greedy(tiny.model, prompt)


def test_concurrent_requests_with_different_params_match_running_alone(engine_factory):
    variants = [
        dict(),
        dict(do_sample=True, seed=1, temperature=0.7, top_k=20),
        dict(do_sample=True, seed=2, top_p=0.8, repetition_penalty=1.3),
        dict(do_sample=True, seed=3, typical_p=0.6, frequency_penalty=0.5, presence_penalty=0.3),
        dict(repetition_penalty=2.0, top_n_tokens=2),
    ]
    alone = []
    for i, params in enumerate(variants):
        engine = engine_factory()
        request = make_request(PROMPTS[i % 3], max_new_tokens=8, ignore_eos=True, **params)
        engine.add_request(request)
        alone.append(token_ids(run_to_completion(engine)[request.request_id]))

    engine = engine_factory()
    requests = [
        make_request(PROMPTS[i % 3], max_new_tokens=8, ignore_eos=True, **params)
        for i, params in enumerate(variants)
    ]
    for r in requests:
        engine.add_request(r)
    results = run_to_completion(engine)
    assert [token_ids(results[r.request_id]) for r in requests] == alone


def test_seeded_sampling_is_reproducible_across_batch_compositions(engine_factory):
    def run(extra: int) -> list[int]:
        engine = engine_factory()
        target = make_request(PROMPTS[1], max_new_tokens=12, do_sample=True, seed=1234)
        others = [
            make_request(PROMPTS[i % 4], max_new_tokens=5 + i, do_sample=True, temperature=1.3)
            for i in range(extra)
        ]
        for r in [*others[: extra // 2], target, *others[extra // 2 :]]:
            engine.add_request(r)
        return token_ids(run_to_completion(engine)[target.request_id])

    assert run(0) == run(3) == run(6)


def test_unseeded_sampling_reports_the_seed_it_used(engine_factory):
    engine = engine_factory()
    request = make_request(PROMPTS[0], max_new_tokens=6, do_sample=True)
    engine.add_request(request)
    events = run_to_completion(engine)[request.request_id]
    seed = events[-1].seed
    assert isinstance(seed, int)

    replay = make_request(PROMPTS[0], max_new_tokens=6, do_sample=True, seed=seed)
    engine.add_request(replay)
    assert token_ids(run_to_completion(engine)[replay.request_id]) == token_ids(events)


def test_events_are_one_per_token_with_totals_on_the_last(engine_factory, tiny):
    engine = engine_factory()
    request = make_request(PROMPTS[2], max_new_tokens=7, ignore_eos=True)
    engine.add_request(request)
    events = run_to_completion(engine)[request.request_id]
    assert [e.index for e in events] == list(range(1, 8))
    assert [e.finish_reason for e in events] == [None] * 6 + [FinishReason.LENGTH]
    last = events[-1]
    assert last.num_prompt_tokens == len(PROMPTS[2]) and last.num_generated_tokens == 7
    assert last.seed is None  # greedy
    assert last.queued_at <= last.first_scheduled_at <= last.finished_at
    text = "".join(e.text for e in events)
    assert text == tiny.tokenizer.decode(token_ids(events), skip_special_tokens=True)


def test_stop_sequence_ends_generation_and_stays_in_the_text(engine_factory, tiny):
    engine = engine_factory()
    probe = make_request(PROMPTS[1], max_new_tokens=12, ignore_eos=True)
    engine.add_request(probe)
    events = run_to_completion(engine)[probe.request_id]
    texts = [e.text for e in events]
    # Stop on the text of the 5th token: generation ends right there.
    stop = texts[4].strip() or texts[4]
    assert stop and stop not in "".join(texts[:4])

    request = make_request(PROMPTS[1], max_new_tokens=12, ignore_eos=True, stop=(stop,))
    engine.add_request(request)
    stopped = run_to_completion(engine)[request.request_id]
    assert stopped[-1].finish_reason == FinishReason.STOP_SEQUENCE
    assert len(stopped) == 5
    assert "".join(e.text for e in stopped).endswith(texts[4])


def test_eos_token_finishes_with_special_token_and_no_text(tiny, engine_factory):
    first = hf_greedy(tiny.model, PROMPTS[0], 3)
    # Pretend the model's 3rd greedy token is its end-of-sequence token.
    loaded = dataclasses.replace(tiny, eos_token_ids={first[2]})
    engine = Engine(loaded, engine_factory().config)
    request = make_request(PROMPTS[0], max_new_tokens=10)
    engine.add_request(request)
    events = run_to_completion(engine)[request.request_id]
    assert len(events) == 3
    assert events[-1].finish_reason == FinishReason.EOS_TOKEN
    assert events[-1].token.special and events[-1].token.id == first[2]
    assert events[-1].text == ""

    ignoring = make_request(PROMPTS[0], max_new_tokens=10, ignore_eos=True)
    engine.add_request(ignoring)
    events = run_to_completion(engine)[ignoring.request_id]
    assert len(events) == 10 and events[-1].finish_reason == FinishReason.LENGTH


def test_top_n_tokens_and_logprobs(engine_factory, tiny):
    engine = engine_factory()
    request = make_request(PROMPTS[1], max_new_tokens=3, top_n_tokens=4)
    engine.add_request(request)
    events = run_to_completion(engine)[request.request_id]
    with torch.no_grad():
        logits = tiny.model(torch.tensor([PROMPTS[1]])).logits[0, -1].float()
    expected = logits.log_softmax(-1).topk(4)
    first = events[0]
    assert [t.id for t in first.top_tokens] == expected.indices.tolist()
    assert [t.logprob for t in first.top_tokens] == pytest.approx(
        expected.values.tolist(), abs=1e-4
    )
    assert first.token.id == first.top_tokens[0].id
    assert first.token.logprob == pytest.approx(first.top_tokens[0].logprob)
    assert all(len(e.top_tokens) == 4 for e in events)


def test_decoder_input_details_reports_prompt_logprobs(engine_factory, tiny):
    engine = engine_factory()
    prompt = PROMPTS[3]  # chunked over several steps
    request = make_request(prompt, max_new_tokens=2, decoder_input_details=True)
    engine.add_request(request)
    events = run_to_completion(engine)[request.request_id]
    prefill = events[0].prefill
    assert prefill is not None and events[1].prefill is None
    assert [t.id for t in prefill] == prompt
    assert prefill[0].logprob is None
    with torch.no_grad():
        logits = tiny.model(torch.tensor([prompt])).logits[0].float()
    expected = logits[:-1].log_softmax(-1).gather(1, torch.tensor(prompt[1:]).unsqueeze(1))
    assert [t.logprob for t in prefill[1:]] == pytest.approx(expected.squeeze(1).tolist(), abs=1e-4)


def test_abort_frees_the_batch_slot_and_cache_at_once(engine_factory):
    engine = engine_factory()
    keep = make_request(PROMPTS[1], max_new_tokens=50, ignore_eos=True)
    drop = make_request(PROMPTS[3], max_new_tokens=50, ignore_eos=True)
    engine.add_request(keep)
    engine.add_request(drop)
    for _ in range(4):
        engine.step()
    blocks_before = engine.scheduler.block_manager.num_used_blocks
    assert engine.abort(drop.request_id)
    assert engine.num_running == 1
    assert engine.scheduler.block_manager.num_used_blocks < blocks_before
    results = run_to_completion(engine)
    assert drop.request_id not in results
    assert engine.scheduler.block_manager.num_used_blocks == 0
    assert not engine.abort(drop.request_id)


def test_request_that_cannot_fit_the_cache_fails_with_generation_error(engine_factory):
    engine = engine_factory(max_batch_total_tokens=64)
    request = make_request(100, max_new_tokens=4)
    engine.add_request(request)
    (error,) = run_to_completion(engine)[request.request_id]
    assert isinstance(error, GenerationError)
    assert str(error) == PROMPT_TOO_LONG_FOR_CACHE.format(needed=101, capacity=64)


def test_preempted_requests_still_produce_the_greedy_output(engine_factory, expected):
    # 6 blocks of 16 tokens: the prompts fill them, so decoding forces preemption + recompute.
    engine = engine_factory(max_batch_total_tokens=96, block_size=16)
    requests = [make_request(p, max_new_tokens=NEW_TOKENS, ignore_eos=True) for p in PROMPTS[:3]]
    for r in requests:
        engine.add_request(r)
    seqs = [engine.states[r.request_id].seq for r in requests]
    results = run_to_completion(engine)
    assert sum(s.num_preemptions for s in seqs) > 0
    assert [token_ids(results[r.request_id]) for r in requests] == expected[:3]
    assert all(isinstance(e, GenerationEvent) for r in requests for e in results[r.request_id])


@pytest.mark.parametrize("cached_prefix", [0, 64], ids=["fresh", "after-cached-prefix"])
def test_long_prompt_in_one_chunk_equals_transformers_generate(engine_factory, tiny, cached_prefix):
    # After a cached prefix, the chunk's queries (more than one block of 256) are attended
    # in blocks with an offset causal mask; a fresh prompt in one causal call.
    prompt = [(i * 53) % 40000 + 11 for i in range(450)]
    config = dataclasses.replace(engine_factory().config, max_batch_prefill_tokens=1024)
    engine = engine_factory(config)
    if cached_prefix:
        engine.add_request(make_request([*prompt[:cached_prefix], 5], max_new_tokens=1))
        run_to_completion(engine)
    request = make_request(prompt, max_new_tokens=6, ignore_eos=True)
    engine.add_request(request)
    seq = engine.states[request.request_id].seq
    events = run_to_completion(engine)[request.request_id]
    assert seq.num_cached_tokens == cached_prefix
    assert token_ids(events) == hf_greedy(tiny.model, prompt, 6)
    # The greedy choice alone barely depends on attention in a random model; the first
    # token's logprob shows a query that sees one key too few or too many.
    with torch.no_grad():
        last = tiny.model(torch.tensor([prompt])).logits[0, -1].float().log_softmax(-1)
    assert events[0].token.logprob == pytest.approx(last[events[0].token.id].item(), abs=1e-5)


def test_prompt_longer_than_the_model_context_is_refused(engine_factory, tiny):
    engine = engine_factory()
    with pytest.raises(ValueError, match="positions"):
        engine.add_request(make_request(tiny.max_position_embeddings, max_new_tokens=2))
    assert not engine.has_work
