"""The engine over a quantized KV cache (``--kv-cache-dtype``) on the tiny random Llama.

Every path that writes or reads the cache runs: batched decode (the compiled kernel and the
portable SDPA path), chunked prefill (the 150-token prompt is longer than the 64-token
budget), prefix reuse, preemption, and the transformers backend. Over int8, greedy output
must equal transformers' float32 answer and each sampled token's logprob stay close to the
float32 cache's; the quality bounds on a real model are in tests/inference/model/
test_kv_quality.py.
"""

from __future__ import annotations

import copy
import dataclasses

import httpx
import pytest
import torch

from inference.engine.async_engine import AsyncEngine
from inference.engine.engine import Engine
from inference.engine.scheduler import SchedulerConfig
from inference.model.runner import KV_DTYPE_NEEDS_PAGED, HFModelRunner, build_runner
from inference.model.transformers_backend import TransformersPagedRunner
from inference.types import GenerationEvent
from tests.inference.api.conftest import LIMITS, serve
from tests.inference.engine.test_engine import NEW_TOKENS, PROMPTS, hf_greedy
from tests.inference.factories import SMALL_LIMITS, make_request, run_to_completion, token_ids

# max |logprob - float32 cache's logprob| of a sampled token (measured: under 1e-3)
MAX_INT8_LOGPROB_DELTA = 0.005


@pytest.fixture(scope="module")
def expected(tiny) -> list[list[int]]:
    return [hf_greedy(tiny.model, p) for p in PROMPTS]


def run(engine, prompts=PROMPTS, n: int = NEW_TOKENS) -> list[list[GenerationEvent]]:
    requests = [make_request(p, max_new_tokens=n, ignore_eos=True) for p in prompts]
    for r in requests:
        engine.add_request(r)
    results = run_to_completion(engine)
    return [results[r.request_id] for r in requests]


def logprob_delta(a: list[list[GenerationEvent]], b: list[list[GenerationEvent]]) -> float:
    pairs = [(x, y) for ea, eb in zip(a, b, strict=True) for x, y in zip(ea, eb, strict=True)]
    return max(abs(x.token.logprob - y.token.logprob) for x, y in pairs)


@pytest.fixture(scope="module")
def float32_events(tiny) -> list[list[GenerationEvent]]:
    config = SchedulerConfig.from_engine_config(SMALL_LIMITS)
    return run(Engine(tiny, SMALL_LIMITS, config))


def with_kv(tiny, name: str):
    """The tiny model asking for a KV dtype (a copy: the runner records what it serves)."""
    return dataclasses.replace(tiny, kv_cache_dtype=name)


@pytest.mark.parametrize("path", ["kernel", "portable"])
def test_greedy_batch_over_an_int8_cache(engine_factory, tiny, expected, float32_events, path):
    loaded = with_kv(tiny, "int8")
    engine = engine_factory(runner=build_runner(loaded, 4096 // 32, 32))
    if path == "portable":
        engine.runner.model.decode_kernel = False
    assert engine.runner.cache.kv.dtype == torch.int8
    events = run(engine)
    assert [token_ids(e) for e in events] == expected
    assert logprob_delta(events, float32_events) <= MAX_INT8_LOGPROB_DELTA
    assert loaded.kv_cache_dtype == "int8"


@pytest.mark.parametrize("name", ["fp8_e4m3fn", "fp8_e5m2"])
def test_fp8_cache_reads_the_same_through_the_kernel_and_the_portable_path(
    engine_factory, tiny, name
):
    """fp8 without a scale rounds this random model's small K/V coarsely, and its near-flat
    logits then flip the greedy choice; its quality is measured on the bundled model."""
    results = []
    for path in ("kernel", "portable"):
        engine = engine_factory(runner=build_runner(with_kv(tiny, name), 4096 // 32, 32))
        assert engine.runner.cache.kv.dtype == torch.uint8
        engine.runner.model.decode_kernel &= path == "kernel"
        results.append(run(engine))
    kernel, portable = results
    assert [token_ids(e) for e in kernel] == [token_ids(e) for e in portable]
    assert logprob_delta(kernel, portable) <= 1e-4


@pytest.mark.parametrize("name", ["int8", "fp8_e4m3fn"])
def test_transformers_backend_over_a_quantized_cache(engine_factory, tiny, expected,
                                                     float32_events, name):  # fmt: skip
    # NOTE: the backend swaps the model's linears in place: a copy keeps the shared one intact
    own = dataclasses.replace(with_kv(tiny, name), model=copy.deepcopy(tiny.model))
    backend = engine_factory(runner=TransformersPagedRunner(own, 4096 // 32, 32))
    events = run(backend)
    if name == "int8":
        assert [token_ids(e) for e in events] == expected
        assert logprob_delta(events, float32_events) <= MAX_INT8_LOGPROB_DELTA
    else:  # float8's rounding flips this random model's near-flat greedy choices (see above)
        assert all(c.kv.dtype == torch.uint8 for c in backend.runner.caches)
        assert [len(e) for e in events] == [NEW_TOKENS] * len(PROMPTS)
        # the first token comes from the prefill, which attends before the cache is read
        assert [token_ids(e)[0] for e in events] == [t[0] for t in expected]


def test_quantized_cache_holds_four_times_the_float32_tokens(engine_factory, tiny):
    plain = engine_factory()
    int8 = engine_factory(runner=build_runner(with_kv(tiny, "int8"), 4096 // 32, 32))
    fp8 = engine_factory(runner=build_runner(with_kv(tiny, "fp8"), 4096 // 32, 32))
    assert plain.num_blocks == 128
    assert fp8.num_blocks == 4 * 128  # one byte a value against four
    assert int8.num_blocks == 4 * 128 * 16 // 18  # head_dim 16 plus a 2-byte scale per row
    assert int8.runner.cache.num_bytes <= plain.runner.cache.num_bytes
    assert int8.max_total_tokens == min(tiny.max_position_embeddings, int8.num_blocks * 32)


def test_prefix_reuse_and_preemption_over_an_int8_cache(engine_factory, tiny, expected):
    loaded = with_kv(tiny, "int8")
    # A follow-up reuses the first answer's blocks, int8 codes and scales alike.
    engine = engine_factory(runner=build_runner(loaded, 4096 // 32, 32))
    run(engine, [PROMPTS[3]])
    follow_prompt = PROMPTS[3] + expected[3] + [11, 12, 13]
    follow = make_request(follow_prompt, max_new_tokens=6, ignore_eos=True)
    engine.add_request(follow)
    seq = engine.states[follow.request_id].seq
    events = run_to_completion(engine)[follow.request_id]
    assert seq.num_cached_tokens == len(PROMPTS[3]) + NEW_TOKENS - 1
    assert token_ids(events) == hf_greedy(tiny.model, follow_prompt, 6)
    # 2 blocks of 16 tokens at float32's size, 7 in int8: the prompts overflow them, so
    # decoding preempts and recomputes.
    runner = build_runner(with_kv(tiny, "int8"), 2, 16)
    assert runner.num_blocks == 7
    engine = engine_factory(runner=runner, max_batch_total_tokens=96, block_size=16)
    requests = [
        make_request(p, max_new_tokens=NEW_TOKENS, ignore_eos=True) for p in PROMPTS[:3] * 4
    ]
    for r in requests:
        engine.add_request(r)
    seqs = [engine.states[r.request_id].seq for r in requests]
    results = run_to_completion(engine)
    assert sum(s.num_preemptions for s in seqs) > 0
    assert [token_ids(results[r.request_id]) for r in requests] == expected[:3] * 4


def test_the_one_sequence_fallback_refuses_a_quantized_cache(tiny):
    with pytest.raises(ValueError) as refused:
        build_runner(with_kv(tiny, "int8"), 128, 32, force_hf=True)
    assert str(refused.value) == KV_DTYPE_NEEDS_PAGED.format(name="int8", reason="forced")
    loaded = with_kv(tiny, "auto")
    assert isinstance(build_runner(loaded, 128, 32, force_hf=True), HFModelRunner)
    assert loaded.kv_cache_dtype == "float32"


def test_info_reports_the_cache_dtype_and_the_tokens_it_holds(tiny):
    loaded = dataclasses.replace(with_kv(tiny, "int8"), max_position_embeddings=2048)
    live = serve(AsyncEngine(loaded, LIMITS))
    try:
        info = httpx.get(live.url + "/info", timeout=30).json()
    finally:
        live.stop()
    assert info["kv_cache_dtype"] == "int8"
    blocks = LIMITS.max_batch_total_tokens // 32
    assert info["kv_cache_tokens"] == 32 * (4 * blocks * 16 // 18)
