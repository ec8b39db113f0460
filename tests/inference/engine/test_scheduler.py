"""Scheduler behaviour with request factories and no model (the runner's part is faked)."""

from __future__ import annotations

from inference.batch import SchedulerOutput, Sequence, SequenceStatus
from inference.engine.scheduler import Scheduler, SchedulerConfig
from tests.inference.factories import make_sequence


def fake_run(scheduler: Scheduler, out: SchedulerOutput, token: int = 7) -> None:
    """What the engine does after the model ran: record KV, append one sampled token."""
    for chunk in out.chunks:
        scheduler.update_computed(chunk)
        if chunk.is_last_chunk:
            chunk.seq.token_ids.append(token)


def decoding(scheduler: Scheduler, num: int) -> list[Sequence]:
    """`num` new 4-token requests, prefilled together in one step: from then on they decode."""
    seqs = [make_sequence(4) for _ in range(num)]
    for seq in seqs:
        scheduler.add(seq)
    fake_run(scheduler, scheduler.schedule())
    return seqs


def config(**kw) -> SchedulerConfig:
    values = dict(
        max_batch_size=8,
        max_batch_prefill_tokens=64,
        max_batch_total_tokens=1024,
        block_size=4,
        waiting_served_ratio=0.0,
        max_waiting_tokens=20,
        max_prefill_tokens_while_decoding=16,
    )
    values.update(kw)
    return SchedulerConfig(**values)


def test_new_request_is_prefilled_then_decoded_one_token_per_step():
    s = Scheduler(config())
    seq = make_sequence(10)
    s.add(seq)
    out = s.schedule()
    assert [(c.start, c.num_new_tokens) for c in out.chunks] == [(0, 10)]
    assert out.chunks[0].is_last_chunk
    fake_run(s, out)
    out = s.schedule()
    assert [(c.start, c.num_new_tokens) for c in out.chunks] == [(10, 1)]


def test_long_prompt_is_chunked_by_the_prefill_budget():
    s = Scheduler(config(max_batch_prefill_tokens=32))
    seq = make_sequence(100)
    s.add(seq)
    chunks = []
    for _ in range(4):
        out = s.schedule()
        chunks += [(c.start, c.num_new_tokens, c.is_last_chunk) for c in out.chunks]
        fake_run(s, out)
    assert chunks == [(0, 32, False), (32, 32, False), (64, 32, False), (96, 4, True)]
    assert seq.num_tokens == 101


def test_decoding_streams_keep_running_while_a_long_prompt_is_chunked():
    s = Scheduler(config(max_batch_prefill_tokens=64, max_prefill_tokens_while_decoding=16))
    decoders = decoding(s, 3)
    long = make_sequence(60)
    s.add(long)
    for _ in range(4):
        out = s.schedule()
        per_seq = {c.seq.seq_id: c.num_new_tokens for c in out.chunks}
        assert all(per_seq[d.seq_id] == 1 for d in decoders)
        assert per_seq[long.seq_id] <= 16
        fake_run(s, out)
    assert long.num_computed_tokens == 60
    out = s.schedule()
    assert {c.seq.seq_id for c in out.chunks if c.is_last_chunk} >= {d.seq_id for d in decoders}


def test_prefill_token_budget_is_shared_across_new_requests():
    s = Scheduler(config(max_batch_prefill_tokens=20))
    seqs = [make_sequence(8) for _ in range(4)]
    for seq in seqs:
        s.add(seq)
    out = s.schedule()
    assert out.num_tokens == 20
    assert [c.num_new_tokens for c in out.chunks] == [8, 8, 4]
    assert s.num_waiting == 1


def test_max_batch_size_bounds_running_sequences():
    s = Scheduler(config(max_batch_size=2))
    for _ in range(5):
        s.add(make_sequence(4))
    out = s.schedule()
    assert len(out.chunks) == 2
    assert s.num_running == 2 and s.num_waiting == 3


def test_request_waits_while_the_cache_is_full_and_runs_once_it_frees():
    # 8 blocks of 4 tokens = 32 tokens of cache.
    s = Scheduler(config(max_batch_total_tokens=32))
    first, second = make_sequence(20), make_sequence(16)
    s.add(first)
    s.add(second)
    out = s.schedule()
    assert [c.seq for c in out.chunks] == [first]
    assert second.status == SequenceStatus.WAITING
    fake_run(s, out)
    s.finish(first)
    out = s.schedule()
    assert [c.seq for c in out.chunks] == [second]


def test_newest_sequence_is_preempted_when_decoding_needs_blocks():
    s = Scheduler(config(max_batch_total_tokens=32))  # 8 blocks
    old, new = make_sequence(16), make_sequence(12)  # 4 + 3 blocks (+1 spare for growth)
    s.add(old)
    fake_run(s, s.schedule())
    s.add(new)
    fake_run(s, s.schedule())
    assert s.num_running == 2
    # Each decode step grows both; soon one block is missing and `new` is preempted.
    preempted = []
    for _ in range(8):
        out = s.schedule()
        preempted += out.preempted
        fake_run(s, out)
        if preempted:
            break
    assert preempted == [new]
    assert new.status == SequenceStatus.WAITING and new.num_computed_tokens == 0
    assert new.block_table == []
    assert old.status == SequenceStatus.RUNNING
    # Its generated tokens are kept and recomputed once it is admitted again (its own
    # computed blocks are still in the prefix cache, so only the tail is recomputed).
    num_tokens = new.num_tokens
    s.finish(old)
    out = s.schedule()
    assert [(c.seq, c.end) for c in out.chunks] == [(new, num_tokens)]
    assert out.chunks[0].start == new.num_cached_tokens == 16


def test_request_larger_than_the_whole_cache_fails_instead_of_waiting_forever():
    s = Scheduler(config(max_batch_total_tokens=16))
    seq = make_sequence(40)
    s.add(seq)
    out = s.schedule()
    assert out.chunks == []
    assert [f[0] for f in out.failed] == [seq]
    assert s.num_waiting == 0


def test_waiting_served_ratio_delays_prefill_until_enough_requests_wait():
    s = Scheduler(config(waiting_served_ratio=1.0, max_waiting_tokens=3))
    decoding(s, 2)
    late = make_sequence(4)
    s.add(late)
    # 1 waiting < floor(2 running * 1.0): decode only, until max_waiting_tokens steps passed.
    for _ in range(3):
        out = s.schedule()
        assert late not in [c.seq for c in out.chunks]
        fake_run(s, out)
    out = s.schedule()
    assert late in [c.seq for c in out.chunks]


def test_waiting_served_ratio_admits_when_enough_requests_wait():
    s = Scheduler(config(waiting_served_ratio=1.0, max_waiting_tokens=100))
    decoding(s, 2)
    late = [make_sequence(4) for _ in range(2)]
    for seq in late:
        s.add(seq)
    out = s.schedule()
    assert set(late) <= {c.seq for c in out.chunks}


def test_prefix_cache_hit_skips_computed_tokens():
    s = Scheduler(config())
    history = list(range(1, 18))
    first = make_sequence(history)
    s.add(first)
    fake_run(s, s.schedule())
    s.finish(first)
    follow_up = make_sequence([*history, 30, 31, 32])
    s.add(follow_up)
    out = s.schedule()
    # The full block and the finished sequence's partly filled block (token 17) are reused.
    assert [(c.start, c.num_new_tokens) for c in out.chunks] == [(17, 3)]
    assert follow_up.num_cached_tokens == 17


def test_finish_frees_blocks_of_running_and_waiting_sequences():
    s = Scheduler(config(max_batch_size=1))
    a, b = make_sequence(8), make_sequence(8)
    s.add(a)
    s.add(b)
    s.schedule()
    assert s.block_manager.num_used_blocks == 2
    s.finish(a)
    s.finish(b)
    assert s.block_manager.num_used_blocks == 0
    assert not s.has_work


def test_a_burst_of_arrivals_is_prefilled_together_despite_the_decoding_cap():
    s = Scheduler(config(max_batch_prefill_tokens=64, max_prefill_tokens_while_decoding=16))
    [first] = decoding(s, 1)
    burst = [make_sequence(list(range(200 + 10 * i, 208 + 10 * i))) for i in range(5)]
    for seq in burst:
        s.add(seq)
    out = s.schedule()
    # As many wait as decode: the full prefill budget, not the 16-token cap.
    assert {c.seq for c in out.chunks} == {first, *burst}
    assert out.num_tokens == 1 + 5 * 8


def test_chunks_keep_the_decoding_budget_however_deep_into_a_long_prompt():
    """A deep chunk's attention reads the whole context whatever its size, so it is not cut
    further (scheduler docstring): 64 tokens a step, with the streams decoding every step."""
    s = Scheduler(
        config(
            max_batch_total_tokens=4096,
            max_batch_prefill_tokens=512,
            max_prefill_tokens_while_decoding=64,
        )
    )
    streams = decoding(s, 2)  # more decode than wait: the newcomer is chunked
    long_prompt = make_sequence(list(range(1000, 2000)))
    s.add(long_prompt)
    sizes = []
    while long_prompt.is_prefilling or long_prompt.num_computed_tokens == 0:
        out = s.schedule()
        assert set(streams) <= {c.seq for c in out.chunks}  # no stream is ever stalled
        sizes += [c.num_new_tokens for c in out.chunks if c.seq is long_prompt]
        fake_run(s, out)
    assert sizes == [64] * 15 + [1000 - 15 * 64]


def test_alone_a_long_prompt_takes_the_whole_prefill_budget():
    s = Scheduler(config(max_batch_total_tokens=4096, max_batch_prefill_tokens=512))
    long_prompt = make_sequence(list(range(1000, 2100)))
    s.add(long_prompt)
    out = s.schedule()
    assert [c.num_new_tokens for c in out.chunks] == [512]  # no stream decodes: no cap
