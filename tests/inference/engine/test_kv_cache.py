from __future__ import annotations

import pytest

from inference.engine.kv_cache import BlockManager
from tests.inference.factories import make_sequence


def test_allocate_covers_all_tokens_and_free_returns_blocks():
    bm = BlockManager(num_blocks=8, block_size=4)
    seq = make_sequence(10)
    assert bm.allocate(seq) == 0
    assert len(seq.block_table) == 3
    assert bm.num_free_blocks == 5
    bm.free(seq)
    assert bm.num_free_blocks == 8
    assert seq.block_table == []


def test_grow_adds_a_block_only_at_a_block_boundary():
    bm = BlockManager(num_blocks=8, block_size=4)
    seq = make_sequence(8)
    bm.allocate(seq)
    bm.grow(seq, 8)
    assert len(seq.block_table) == 2
    bm.grow(seq, 9)
    assert len(seq.block_table) == 3
    assert bm.num_free_blocks == 5


def test_allocation_beyond_capacity_is_refused():
    bm = BlockManager(num_blocks=2, block_size=4)
    seq = make_sequence(9)
    assert not bm.can_allocate(seq)
    with pytest.raises(MemoryError):
        bm.allocate(seq)
    assert bm.num_free_blocks == 2


def _computed(bm: BlockManager, seq) -> None:
    seq.num_computed_tokens = seq.num_tokens
    bm.commit(seq)


def test_prefix_of_full_computed_blocks_is_reused():
    bm = BlockManager(num_blocks=16, block_size=4)
    first = make_sequence(list(range(1, 11)))  # 2 full blocks + 2 tokens
    bm.allocate(first)
    _computed(bm, first)
    assert bm.num_cached_blocks == 2

    follow_up = make_sequence([*list(range(1, 11)), 50, 51, 52])
    assert bm.allocate(follow_up) == 8
    assert follow_up.block_table[:2] == first.block_table[:2]
    assert bm.blocks[first.block_table[0]].ref_count == 2


def test_fully_cached_prompt_still_computes_its_last_token():
    bm = BlockManager(num_blocks=16, block_size=4)
    first = make_sequence(list(range(1, 9)))
    bm.allocate(first)
    _computed(bm, first)
    again = make_sequence(list(range(1, 9)))
    assert bm.allocate(again) == 7


def _two_computed_blocks() -> tuple[BlockManager, object]:
    """A manager whose cache holds the computed blocks [1, 2, 3, 4] and [5, 6, 7, 8]."""
    bm = BlockManager(num_blocks=16, block_size=4)
    first = make_sequence([1, 2, 3, 4, 5, 6, 7, 8])
    bm.allocate(first)
    _computed(bm, first)
    return bm, first


def test_different_prefix_is_not_reused():
    bm, _ = _two_computed_blocks()
    other = make_sequence([9, 2, 3, 4, 5, 6, 7, 8, 10])
    assert bm.allocate(other) == 0
    assert bm.take_copies() == []


def test_block_that_differs_inside_is_reused_up_to_the_difference_by_copy():
    bm, first = _two_computed_blocks()
    other = make_sequence([1, 2, 3, 9, 5, 6, 7, 8, 10])
    assert bm.allocate(other) == 3
    # Its own block (it will write position 3 on), filled from the cached one first.
    assert other.block_table[0] != first.block_table[0]
    assert bm.take_copies() == [(first.block_table[0], other.block_table[0])]
    assert bm.take_copies() == []  # handed out once


def test_uncomputed_blocks_are_not_shared():
    bm = BlockManager(num_blocks=16, block_size=4)
    first = make_sequence(list(range(1, 13)))
    bm.allocate(first)
    first.num_computed_tokens = 4  # only the first block's KV exists so far
    bm.commit(first)
    second = make_sequence(list(range(1, 13)))
    assert bm.allocate(second) == 4


def test_freed_cached_blocks_survive_until_evicted():
    bm = BlockManager(num_blocks=4, block_size=4)
    first = make_sequence(list(range(1, 9)))
    bm.allocate(first)
    _computed(bm, first)
    bm.free(first)
    assert bm.num_free_blocks == 4
    assert bm.num_cached_blocks == 2

    again = make_sequence([*list(range(1, 9)), 99])
    assert bm.allocate(again) == 8  # revived from the free list
    bm.free(again)

    # Filling the whole cache with unrelated tokens evicts the cached prefix.
    filler = make_sequence(list(range(200, 216)))
    bm.allocate(filler)
    assert bm.num_cached_blocks == 0
    bm.free(filler)
    assert bm.allocate(make_sequence([*list(range(1, 9)), 99])) == 0


def test_prefix_caching_can_be_disabled():
    bm = BlockManager(num_blocks=16, block_size=4, enable_prefix_caching=False)
    first = make_sequence(list(range(1, 9)))
    bm.allocate(first)
    _computed(bm, first)
    assert bm.allocate(make_sequence(list(range(1, 10)))) == 0
    assert bm.num_cached_blocks == 0


def test_request_may_opt_out_of_prefix_reuse():
    bm = BlockManager(num_blocks=16, block_size=4)
    first = make_sequence(list(range(1, 9)))
    bm.allocate(first)
    _computed(bm, first)
    assert bm.allocate(make_sequence(list(range(1, 10))), use_prefix_cache=False) == 0


def _finished(bm: BlockManager, seq, generated: list[int]) -> list[int]:
    """The sequence computed its prompt and all but the last of ``generated``, then ends;
    returns the block table it had."""
    seq.token_ids.extend(generated)
    seq.num_computed_tokens = len(seq.token_ids) - 1
    bm.grow(seq, len(seq.token_ids))
    bm.commit(seq)
    table = list(seq.block_table)
    bm.free(seq)
    return table


def test_finished_sequences_partly_filled_block_is_copied_for_a_follow_up():
    bm = BlockManager(num_blocks=16, block_size=4)
    first = make_sequence(list(range(1, 11)))  # 2 full blocks + 2 tokens
    bm.allocate(first)
    table = _finished(bm, first, [70, 71])  # computed 1..10, 70: last block holds 9, 10, 70
    bm.take_copies()

    follow_up = make_sequence([*range(1, 11), 70, 71, 5, 6])  # the history, then new tokens
    assert bm.allocate(follow_up) == 11
    assert follow_up.block_table[:2] == table[:2]
    assert bm.take_copies() == [(table[2], follow_up.block_table[2])]


def test_resent_prompt_reuses_the_prompt_part_of_a_block_the_answer_filled():
    bm = BlockManager(num_blocks=16, block_size=4)
    prompt = list(range(1, 11))
    first = make_sequence(list(prompt))
    bm.allocate(first)
    table = _finished(bm, first, [70, 71, 72, 73])  # block 2 (9, 10, 70, 71): full, hashed
    bm.take_copies()

    for _ in range(2):  # each resend copies the cached block's first two tokens
        again = make_sequence(list(prompt))
        assert bm.allocate(again) == 9  # all but the last token, which gives the logits
        assert bm.take_copies() == [(table[2], again.block_table[2])]


def test_evicted_block_is_not_copied():
    bm = BlockManager(num_blocks=4, block_size=4)
    first = make_sequence(list(range(1, 7)))
    bm.allocate(first)
    _finished(bm, first, [70])  # 1 full block + a last block holding 5, 6
    filler = make_sequence(list(range(200, 216)))
    bm.allocate(filler)  # takes every block
    bm.free(filler)
    bm.take_copies()
    assert bm.allocate(make_sequence(list(range(1, 7)))) == 0
    assert bm.take_copies() == []


def test_nothing_is_remembered_without_prefix_caching():
    bm = BlockManager(num_blocks=16, block_size=4, enable_prefix_caching=False)
    first = make_sequence(list(range(1, 11)))
    bm.allocate(first)
    _finished(bm, first, [70])
    assert bm.allocate(make_sequence(list(range(1, 11)))) == 0
    assert bm.take_copies() == []
    assert all(block.content is None for block in bm.blocks)
