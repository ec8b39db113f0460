"""AsyncEngine: streaming through asyncio, aborts, overload and failures (tiny model)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from inference.engine.async_engine import ENGINE_OVERLOADED, AsyncEngine
from inference.types import EngineOverloadedError, FinishReason, GenerationError
from tests.inference.factories import SMALL_LIMITS, make_request


@pytest.fixture
async def engine(tiny):
    engine = AsyncEngine(tiny, SMALL_LIMITS)
    await engine.start()
    yield engine
    await engine.shutdown()


async def collect(engine: AsyncEngine, request):
    return [event async for event in engine.generate(request)]


async def wait_until(predicate, attempts: int = 500) -> None:
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_start_warms_up_and_exposes_the_tokenizer(engine, tiny):
    assert engine.is_ready
    assert engine.tokenizer is tiny.tokenizer
    assert engine.loaded is tiny
    assert engine.num_running == 0 and engine.num_waiting == 0


async def test_concurrent_streams_each_get_their_own_events(engine):
    requests = [make_request(5 + i, max_new_tokens=4 + i, ignore_eos=True) for i in range(6)]
    results = await asyncio.gather(*(collect(engine, r) for r in requests))
    for request, events in zip(requests, results, strict=True):
        assert {e.request_id for e in events} == {request.request_id}
        assert len(events) == request.params.max_new_tokens
        assert events[-1].finish_reason == FinishReason.LENGTH
        assert events[-1].num_generated_tokens == request.params.max_new_tokens


async def test_streamed_greedy_output_matches_a_lone_run(engine):
    prompt = list(range(300, 340))
    alone = await collect(engine, make_request(prompt, max_new_tokens=8, ignore_eos=True))
    crowd = [make_request(9, max_new_tokens=12, do_sample=True) for _ in range(4)]
    target = make_request(prompt, max_new_tokens=8, ignore_eos=True)
    *_, together = await asyncio.gather(
        *(collect(engine, r) for r in crowd), collect(engine, target)
    )
    assert [e.token.id for e in together] == [e.token.id for e in alone]


async def test_leaving_the_stream_early_aborts_and_frees_the_cache(engine):
    request = make_request(20, max_new_tokens=400, ignore_eos=True)
    stream = engine.generate(request)
    async for event in stream:
        if event.index == 3:
            break
    await stream.aclose()
    blocks = engine.engine.scheduler.block_manager
    await wait_until(lambda: engine.num_running == 0 and blocks.num_used_blocks == 0)


async def test_cancelled_task_aborts_its_request(engine):
    request = make_request(20, max_new_tokens=400, ignore_eos=True)
    started = asyncio.Event()

    async def consume():
        async for _ in engine.generate(request):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: engine.num_running == 0)


async def test_overloaded_engine_refuses_new_requests(tiny):
    engine = AsyncEngine(tiny, dataclasses.replace(SMALL_LIMITS, max_concurrent_requests=1))
    await engine.start()
    try:
        stream = engine.generate(make_request(5, max_new_tokens=100, ignore_eos=True))
        await stream.__anext__()
        with pytest.raises(EngineOverloadedError, match=ENGINE_OVERLOADED):
            engine.generate(make_request(5))
        await stream.aclose()
        events = await collect(engine, make_request(5, max_new_tokens=2))
        assert events[-1].is_final
    finally:
        await engine.shutdown()


async def test_failure_in_the_step_loop_raises_generation_error(engine):
    too_long = make_request(SMALL_LIMITS.max_batch_total_tokens + 10, max_new_tokens=2)
    with pytest.raises(GenerationError):
        await collect(engine, too_long)
    # The engine keeps serving others.
    events = await collect(engine, make_request(5, max_new_tokens=2))
    assert events[-1].is_final


async def test_shutdown_fails_requests_still_in_flight(tiny):
    engine = AsyncEngine(tiny, SMALL_LIMITS)
    await engine.start()
    stream = engine.generate(make_request(5, max_new_tokens=10_000, ignore_eos=True))
    await stream.__anext__()
    await engine.shutdown()
    with pytest.raises(GenerationError):
        async for _ in stream:
            pass
    assert not engine.is_ready
