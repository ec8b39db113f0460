"""N-gram drafts and the scheduler's part of speculative decoding, with no model."""

from __future__ import annotations

import pytest

from inference.batch import Sequence
from inference.engine.drafter import NgramDrafter
from inference.engine.scheduler import Scheduler, SchedulerConfig
from inference.types import regex_grammar
from tests.inference.factories import make_sequence


def test_drafts_follow_the_latest_earlier_match_of_the_last_ngram():
    drafter = NgramDrafter(min_n=2, max_n=3)
    tokens = [1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 2, 3]
    # (2, 3) occurred twice before: the latest occurrence (followed by 7, 8) wins.
    assert drafter.propose(tokens, 3) == [7, 8, 2]
    assert drafter.propose(tokens, 1) == [7]


def test_the_longest_match_wins_and_no_match_proposes_nothing():
    drafter = NgramDrafter(min_n=2, max_n=3)
    tokens = [1, 2, 3, 4, 9, 2, 3, 5, 1, 2, 3]
    assert drafter.propose(tokens, 2) == [4, 9]  # (1, 2, 3) beats the later (2, 3) -> 5
    assert NgramDrafter().propose([5, 6, 7, 8], 4) == []
    assert NgramDrafter().propose([5, 6, 5, 6], 0) == []


def test_the_index_grows_with_the_sequence():
    drafter = NgramDrafter(min_n=2, max_n=2)
    tokens = [10, 11, 12]
    assert drafter.propose(tokens, 2) == []
    tokens += [13, 10, 11]
    assert drafter.propose(tokens, 2) == [12, 13]
    tokens += [40, 41, 10, 11]
    assert drafter.propose(tokens, 2) == [40, 41]  # the later occurrence now


def config(**kw) -> SchedulerConfig:
    values = dict(
        max_batch_size=8,
        max_batch_prefill_tokens=64,
        max_batch_total_tokens=256,
        block_size=4,
        waiting_served_ratio=0.0,
        speculate=3,
        speculate_max_seqs=2,
    )
    values.update(kw)
    return SchedulerConfig(**values)


QUOTING = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2]  # then 3: (1, 2, 3) drafts 4, 5, 6


def prefilled(scheduler: Scheduler, *seqs: Sequence) -> None:
    for seq in seqs:
        scheduler.add(seq)
    for chunk in scheduler.schedule().chunks:
        scheduler.update_computed(chunk)
        chunk.seq.token_ids.append(3)  # the first sampled token: context ends (1, 2, 3)


def test_decoding_sequences_carry_drafts_and_the_cache_grows_for_them():
    scheduler = Scheduler(config())
    seq = make_sequence(QUOTING, max_new_tokens=50)
    prefilled(scheduler, seq)
    (chunk,) = scheduler.schedule().chunks
    assert chunk.draft_token_ids == (4, 5, 6)
    assert chunk.num_rows == 4
    assert len(seq.block_table) == scheduler.block_manager.blocks_for(seq.num_tokens + 3)


def test_accepting_drafts_keeps_their_kv_and_returns_the_blocks_of_rejected_ones():
    scheduler = Scheduler(config(speculate=8))
    seq = make_sequence(QUOTING, max_new_tokens=50)
    prefilled(scheduler, seq)
    bm = scheduler.block_manager
    used_before = bm.num_used_blocks
    (chunk,) = scheduler.schedule().chunks
    assert len(chunk.draft_token_ids) == 8
    assert bm.num_used_blocks > used_before
    scheduler.update_computed(chunk)
    seq.token_ids += [4, 99]  # one draft accepted, then a different token
    scheduler.accept_drafts(seq, 1)
    assert seq.num_computed_tokens == chunk.end + 1
    assert len(seq.block_table) == bm.blocks_for(seq.num_tokens)
    assert bm.num_used_blocks == bm.blocks_for(seq.num_tokens)
    scheduler.finish(seq)
    assert bm.num_used_blocks == 0


def test_no_drafts_in_steps_with_more_decoding_sequences_than_the_threshold():
    scheduler = Scheduler(config(speculate_max_seqs=2))
    seqs = [make_sequence(QUOTING, max_new_tokens=50) for _ in range(3)]
    prefilled(scheduler, *seqs)
    assert all(not c.draft_token_ids for c in scheduler.schedule().chunks)
    scheduler.finish(seqs[0])
    assert all(c.draft_token_ids for c in scheduler.schedule().chunks)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"max_new_tokens": 3}, (4,)),  # 1 generated; the last allowed one needs no draft
        ({"max_new_tokens": 1}, ()),
        ({"max_new_tokens": 50, "grammar": regex_grammar("[0-9]+")}, ()),
    ],
)
def test_drafts_stop_at_the_token_budget_and_constrained_requests_get_none(params, expected):
    scheduler = Scheduler(config())
    seq = make_sequence(QUOTING, **params)
    prefilled(scheduler, seq)
    (chunk,) = scheduler.schedule().chunks
    assert chunk.draft_token_ids == expected


def test_drafts_never_pass_the_model_positions():
    scheduler = Scheduler(config(max_positions=len(QUOTING) + 2))
    seq = make_sequence(QUOTING, max_new_tokens=50)
    prefilled(scheduler, seq)
    (chunk,) = scheduler.schedule().chunks
    assert chunk.draft_token_ids == (4,)


def test_drafts_stay_within_the_runners_fast_path_rows():
    scheduler = Scheduler(config(speculate=3, speculate_max_seqs=4, speculate_max_rows=6))
    seqs = [make_sequence(QUOTING, max_new_tokens=50) for _ in range(2)]
    prefilled(scheduler, *seqs)
    chunks = scheduler.schedule().chunks
    assert [len(c.draft_token_ids) for c in chunks] == [3, 1]
    assert sum(c.num_rows for c in chunks) == 6
