"""Speculative decoding in the engine: the same greedy output and sampling distribution with
drafts as without, and the cache left as it was.

The quoting model is the tiny random Llama with its output head set to predict "the next
token id" from the current token: its answers run through ids the prompt already listed, so
n-gram drafts are accepted, until the prompt jumps elsewhere and the model does not (drafts
rejected). The distribution test fakes the model: every row has the same known logits.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from inference.batch import ScheduledChunk
from inference.engine.engine import Engine
from inference.engine.scheduler import SchedulerConfig
from inference.model.loader import LoadedModel
from inference.model.runner import HFModelRunner
from inference.model.runner_base import ModelRunner, RunnerOutput
from inference.types import FinishReason, GenerationEvent
from tests.inference.factories import SMALL_LIMITS, make_request, run_to_completion, token_ids
from tests.support.tiny_model import build_tiny_llama

NEW_TOKENS = 40
PROMPTS = [
    list(range(1000, 1010)) + list(range(5000, 5010)) + [7, 1000],  # quotes, then jumps
    [*range(300, 340), 300],
    [5, 9, 4],
    [(i * 37) % 40000 + 7 for i in range(70)] + [7, 44, 81],  # its first ids again
]


@pytest.fixture(scope="module")
def quoting() -> LoadedModel:
    loaded = build_tiny_llama(seed=1)
    model = loaded.model
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        model.lm_head.weight.copy_(torch.roll(embed, 1, dims=0) * 4)  # row t: embed[t - 1]
        for layer in model.model.layers:  # the random layers still move the answer a little
            layer.self_attn.o_proj.weight.mul_(0.5)
            layer.mlp.down_proj.weight.mul_(0.5)
    return loaded


def engine_for(loaded: LoadedModel, speculate: int, runner=None, **overrides) -> Engine:
    config = SchedulerConfig.from_engine_config(SMALL_LIMITS, speculate=speculate, **overrides)
    return Engine(loaded, SMALL_LIMITS, config, runner)


def generate(engine: Engine, prompts: list[list[int]], **params) -> list[list[GenerationEvent]]:
    requests = [make_request(p, **{"max_new_tokens": NEW_TOKENS, **params}) for p in prompts]
    for request in requests:
        engine.add_request(request)
    results = run_to_completion(engine)
    return [results[r.request_id] for r in requests]


@pytest.mark.parametrize("decode_kernel", [True, False], ids=["kernel", "sdpa"])
def test_greedy_output_is_the_same_with_and_without_drafts(quoting, decode_kernel):
    plain, spec = engine_for(quoting, 0), engine_for(quoting, 4)
    for engine in (plain, spec):
        engine.runner.model.decode_kernel = engine.runner.model.decode_kernel and decode_kernel
    expected = generate(plain, PROMPTS, ignore_eos=True, top_n_tokens=2)
    got = generate(spec, PROMPTS, ignore_eos=True, top_n_tokens=2)
    assert [token_ids(e) for e in got] == [token_ids(e) for e in expected]
    assert spec.num_accepted_tokens > 20  # drafts were accepted ...
    assert spec.num_draft_tokens > spec.num_accepted_tokens  # ... and some rejected
    for a, b in zip(got, expected, strict=True):
        assert [e.index for e in a] == list(range(1, NEW_TOKENS + 1))  # one event per token
        assert "".join(e.text for e in a) == "".join(e.text for e in b)
        assert [e.token.logprob for e in a] == pytest.approx([e.token.logprob for e in b], abs=1e-4)
        assert [[t.id for t in e.top_tokens] for e in a] == [
            [t.id for t in e.top_tokens] for e in b
        ]
    assert spec.num_used_blocks == 0 and plain.num_draft_tokens == 0


def test_a_quoting_answer_takes_fewer_steps(quoting):
    plain, spec = engine_for(quoting, 0), engine_for(quoting, 4)
    for engine in (plain, spec):
        generate(engine, PROMPTS[1:2], ignore_eos=True)
    assert spec.num_steps < plain.num_steps / 2


def test_stop_sequences_and_eos_inside_an_accepted_run(quoting):
    probe = generate(engine_for(quoting, 0), PROMPTS[:1], ignore_eos=True)[0]
    texts = [e.text for e in probe]
    stop = texts[6]  # the 7th token, in the middle of a quoted run
    assert stop and stop not in "".join(texts[:6])
    engine = engine_for(quoting, 4)
    (stopped,) = generate(engine, PROMPTS[:1], ignore_eos=True, stop=(stop,))
    assert stopped[-1].finish_reason == FinishReason.STOP_SEQUENCE
    assert token_ids(stopped) == token_ids(probe)[:7]
    assert engine.num_accepted_tokens > 0 and engine.num_used_blocks == 0

    short = generate(engine, PROMPTS[:1], ignore_eos=True, max_new_tokens=5)[0]
    assert token_ids(short) == token_ids(probe)[:5]
    assert short[-1].finish_reason == FinishReason.LENGTH and engine.num_used_blocks == 0


def test_aborts_while_drafts_are_in_flight_leak_no_block(quoting):
    engine = engine_for(quoting, 6)
    for prompt in PROMPTS:
        engine.add_request(make_request(prompt, max_new_tokens=NEW_TOKENS, ignore_eos=True))
    for _ in range(6):
        engine.step()
    assert engine.num_draft_tokens > 0 and engine.num_used_blocks > 0
    engine.abort_all()
    assert engine.num_used_blocks == 0
    assert engine.scheduler.block_manager.num_free_blocks == engine.num_blocks


def test_the_prefix_cache_holds_only_accepted_tokens(quoting):
    """A follow-up that resends an answer reuses the cached blocks the answer's drafts went
    through; its output equals a fresh engine's without any cache."""
    engine = engine_for(quoting, 4)
    answer = token_ids(generate(engine, PROMPTS[:1], ignore_eos=True)[0])
    follow_up = PROMPTS[0] + answer + [7, 1003]
    cached = generate(engine, [follow_up], ignore_eos=True, max_new_tokens=12)[0]
    fresh = engine_for(quoting, 0, enable_prefix_caching=False)
    assert token_ids(cached) == token_ids(generate(fresh, [follow_up], ignore_eos=True)[0][:12])
    assert engine.scheduler.block_manager.num_cached_blocks > 0


def test_runners_that_cannot_verify_drafts_turn_speculation_off(tiny):
    engine = engine_for(tiny, 4, runner=HFModelRunner(tiny))
    assert engine.speculate == 0
    assert token_ids(generate(engine, PROMPTS[1:2], max_new_tokens=3)[0])
    assert engine.num_draft_tokens == 0


# -- the sampling distribution ---------------------------------------------------------------
TOKENS = [10, 11, 12]
PROBS = [0.5, 0.3, 0.2]
VOCAB = 64


class FixedLogitsRunner(ModelRunner):
    """Every logits row is the same: each token is drawn from one known distribution, whatever
    came before it, so the tokens a request generates are independent draws from it."""

    supports_prefix_caching = True
    supports_speculation = True

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(loaded)
        self.row = torch.full((VOCAB,), float("-inf"))
        self.row[TOKENS] = torch.tensor(PROBS).log()

    def execute(self, chunks: list[ScheduledChunk], prompt_logprob_ids: set[str]) -> RunnerOutput:
        num_rows = sum(1 + len(c.draft_token_ids) for c in chunks if c.is_last_chunk)
        return RunnerOutput(logits=self.row.expand(num_rows, VOCAB).clone())

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None:
        pass


def chi_square_p_value(counts: torch.Tensor, expected_probs: torch.Tensor) -> float:
    expected = expected_probs * counts.sum()
    statistic = ((counts - expected) ** 2 / expected).sum()
    df = torch.tensor(counts.numel() - 1, dtype=torch.float64)
    return float(torch.special.gammaincc(df / 2, statistic / 2))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sampling_keeps_the_distribution_under_speculation(tiny, temperature):
    engine = engine_for(tiny, 4, runner=FixedLogitsRunner(tiny))
    prompt = [10, 11, 12, 10, 12, 11, 11, 10, 10, 12, 12, 10]  # every pair: always a draft
    sequences = []
    for wave in range(40):  # at most 4 at a time, so that every step speculates
        requests = [
            make_request(
                prompt,
                do_sample=True,
                temperature=temperature,
                seed=wave * 4 + i,
                max_new_tokens=30,
                ignore_eos=True,
            )
            for i in range(4)
        ]
        for request in requests:
            engine.add_request(request)
        results = run_to_completion(engine)
        sequences += [token_ids(results[r.request_id]) for r in requests]
    assert engine.num_accepted_tokens > 500
    assert engine.num_draft_tokens - engine.num_accepted_tokens > 500  # rejections too

    probs = torch.tensor(PROBS, dtype=torch.float64) ** (1 / temperature)
    probs /= probs.sum()
    index = {t: i for i, t in enumerate(TOKENS)}
    singles = torch.zeros(3, dtype=torch.float64)
    pairs = torch.zeros(3, 3, dtype=torch.float64)
    for seq in sequences:
        for a in seq:
            singles[index[a]] += 1
        for a, b in itertools.pairwise(seq):
            pairs[index[a], index[b]] += 1
    assert chi_square_p_value(singles, probs) > 1e-3
    # Independence: a draft accepted too often would pair tokens as the prompt does.
    assert chi_square_p_value(pairs.flatten(), torch.outer(probs, probs).flatten()) > 1e-3
