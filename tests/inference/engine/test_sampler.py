"""Sampler functions against transformers' reference logits processors."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    RepetitionPenaltyLogitsProcessor,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from inference.engine.sampler import (
    SamplerRow,
    apply_frequency_presence_penalties,
    apply_repetition_penalty,
    apply_top_k_top_p,
    apply_typical_p,
    filter_candidates,
    process_logits,
    sample,
)
from inference.types import SamplingParams

VOCAB = 50


def row(seed: int | None = None, prompt=(1, 2, 3), output=(), **params) -> SamplerRow:
    sp = SamplingParams(**params)
    generator = None
    if not sp.is_greedy:
        generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    return SamplerRow(sp, generator, list(prompt), list(output))


def random_logits(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, VOCAB, generator=torch.Generator().manual_seed(seed)) * 3


def test_greedy_picks_argmax_and_reports_its_log_softmax():
    logits = random_logits()
    out = sample(logits, [row() for _ in range(4)])
    assert out.token_ids == logits.argmax(-1).tolist()
    expected = logits.log_softmax(-1).gather(1, logits.argmax(-1, keepdim=True)).squeeze(1)
    assert out.logprobs == pytest.approx(expected.tolist(), abs=1e-5)


def test_temperature_zero_is_greedy_even_with_do_sample():
    logits = random_logits()
    out = sample(logits, [row(do_sample=True, temperature=0.0) for _ in range(4)])
    assert out.token_ids == logits.argmax(-1).tolist()


def test_logprob_is_taken_after_temperature():
    logits = random_logits(1)
    out = sample(logits, [row(seed=3, do_sample=True, temperature=2.0)])
    expected = (logits / 2.0).log_softmax(-1)[0, out.token_ids[0]].item()
    assert out.logprobs[0] == pytest.approx(expected, abs=1e-5)


def test_caller_logits_are_not_modified():
    logits = random_logits()
    before = logits.clone()
    sample(logits, [row(do_sample=True, top_k=3, repetition_penalty=1.3) for _ in range(4)])
    assert torch.equal(logits, before)


@pytest.mark.parametrize("k", [1, 5, 49])
def test_top_k_matches_transformers(k):
    logits = random_logits()
    ours = apply_top_k_top_p(logits, torch.full((4,), k), torch.ones(4))
    ref = TopKLogitsWarper(k)(None, logits.clone())
    assert torch.equal(ours.isinf(), ref.isinf())


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_top_p_matches_transformers(p):
    logits = random_logits()
    ours = apply_top_k_top_p(logits, torch.full((4,), VOCAB), torch.full((4,), p))
    ref = TopPLogitsWarper(p)(None, logits.clone())
    assert torch.equal(ours.isinf(), ref.isinf())


@pytest.mark.parametrize("mass", [0.2, 0.5, 0.95])
def test_typical_p_matches_transformers(mass):
    logits = random_logits()
    ours = apply_typical_p(logits, torch.full((4,), mass))
    ref = TypicalLogitsWarper(mass)(None, logits.clone())
    assert torch.equal(ours.isinf(), ref.isinf())


def test_repetition_penalty_matches_transformers():
    logits = random_logits(2)
    ids = torch.tensor([[1, 4, 4, 9], [0, 2, 3, 7]])
    ours = apply_repetition_penalty(logits, ids, torch.full((2,), 1.5))
    ref = RepetitionPenaltyLogitsProcessor(1.5)(ids, logits.clone())
    assert torch.allclose(ours, ref)


def test_frequency_and_presence_penalties_are_additive_over_generated_tokens():
    logits = torch.zeros(1, VOCAB)
    ids = torch.tensor([[5, 5, 5, 8]])
    out = apply_frequency_presence_penalties(
        logits, ids, torch.ones(1, 4), torch.tensor([0.5]), torch.tensor([1.0])
    )
    assert out[0, 5].item() == pytest.approx(-(3 * 0.5) - 1.0)
    assert out[0, 8].item() == pytest.approx(-0.5 - 1.0)
    assert out[0, 0].item() == 0.0


def test_penalties_only_touch_their_own_rows():
    logits = random_logits(2)
    rows = [row(output=(4, 4), frequency_penalty=1.0), row(output=(4, 4))]
    scores = process_logits(logits, rows)
    assert scores[0, 4].item() == pytest.approx(logits[0, 4].item() - 2.0)
    assert torch.equal(scores[1], logits[1])


def test_top_k_one_sampling_is_deterministic_argmax():
    logits = random_logits()
    rows = [row(seed=s, do_sample=True, top_k=1) for s in range(4)]
    assert sample(logits, rows).token_ids == logits.argmax(-1).tolist()


def test_sampling_only_draws_tokens_that_survive_filters():
    logits = random_logits(1) / 6  # flat enough that several tokens get drawn
    allowed = set(logits[0].topk(3).indices.tolist())
    drawn = {sample(logits, [row(seed=s, do_sample=True, top_k=3)]).token_ids[0] for s in range(60)}
    assert drawn <= allowed
    assert len(drawn) > 1


def test_same_seed_same_tokens_whatever_the_rest_of_the_batch():
    logits = random_logits(1, seed=1)
    alone = sample(logits, [row(seed=42, do_sample=True)]).token_ids[0]
    batch = torch.cat([random_logits(2, seed=5), logits, random_logits(1, seed=6)])
    rows = [row(), row(seed=1, do_sample=True), row(seed=42, do_sample=True), row(seed=9)]
    assert sample(batch, rows).token_ids[2] == alone


def test_generator_sequence_is_reproducible():
    logits = random_logits(1, seed=2)

    def draw(seed: int) -> list[int]:
        r = row(seed=seed, do_sample=True, temperature=1.5)
        return [sample(logits, [r]).token_ids[0] for _ in range(20)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_top_n_tokens_are_sorted_and_per_row():
    logits = random_logits(2)
    out = sample(logits, [row(top_n_tokens=3), row()])
    assert out.top_token_ids[0] == logits[0].topk(3).indices.tolist()
    assert out.top_logprobs[0] == sorted(out.top_logprobs[0], reverse=True)
    assert out.top_logprobs[0][0] == pytest.approx(out.logprobs[0], abs=1e-6)
    assert out.top_token_ids[1] == []


@pytest.mark.parametrize(("k", "p"), [(5, 1.0), (0, 0.3), (7, 0.5), (0, 0.9)])
def test_candidate_filtering_equals_the_full_sort(k, p):
    logits = torch.randn(4, 1000, generator=torch.Generator().manual_seed(3)) * 4
    values, indices, complete = filter_candidates(
        logits, 256, torch.full((4,), k), torch.full((4,), p)
    )
    full = apply_top_k_top_p(logits, torch.full((4,), k or 1000), torch.full((4,), p))
    for row in range(4):
        if complete[row]:
            kept = set(indices[row][values[row].isfinite()].tolist())
            assert kept == set(full[row].isfinite().nonzero().flatten().tolist())


def test_flat_distribution_needs_the_fallback_and_still_samples_exactly():
    flat = torch.zeros(1, 1000)
    _, _, complete = filter_candidates(
        flat, 256, torch.zeros(1, dtype=torch.long), torch.tensor([0.9])
    )
    assert not complete[0]
    drawn = {sample(flat, [row(seed=s, do_sample=True, top_p=0.9)]).token_ids[0] for s in range(40)}
    assert max(drawn) > 256  # tokens beyond the candidate window are reachable


def test_sampling_frequencies_follow_the_distribution():
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1] + [1e-9] * 7]))
    counts = [0, 0, 0]
    r = row(seed=11, do_sample=True)
    for _ in range(600):
        counts[sample(logits, [r]).token_ids[0]] += 1
    assert 300 < counts[0] < 420 and 130 < counts[1] < 230 and 25 < counts[2] < 95
