"""The engine: ``step()`` = schedule -> run the model -> sample -> update, plus an async bridge.

``Engine`` is synchronous and single-threaded (tests drive it step by step). ``AsyncEngine``
runs it in one background thread and hands each request's events to that request's asyncio
queue with ``loop.call_soon_threadsafe``. New requests and aborts are handed to the thread
through an inbox that it drains at every step boundary, so the scheduler, the cache and the
model are only ever touched by that thread.
Must not import Django or the web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import torch

from inference.config import EngineConfig, ModelConfig
from inference.detokenizer import IncrementalDetokenizer
from inference.grammar import GrammarCompiler, consume, is_complete
from inference.grammar_masks import StepMasks
from inference.loader import LoadedModel, load_model
from inference.model_runner import (
    ModelRunner,
    build_runner,
    prepare_engine_thread,
    release_idle_openmp_pools,
)
from inference.sampler import SamplerRow, sample
from inference.scheduler import Scheduler, SchedulerConfig, Sequence
from inference.stopping import StoppingCriteria
from inference.types import (
    EngineOverloadedError,
    FinishReason,
    GenerationError,
    GenerationEvent,
    Request,
    TokenInfo,
)

logger = logging.getLogger(__name__)

ENGINE_OVERLOADED = "Model is overloaded"
ENGINE_NOT_RUNNING = "The engine is not running"
ENGINE_SHUT_DOWN = "The engine shut down before the request finished"
DUPLICATE_REQUEST_ID = "A request with this id is already running"
PROMPT_TOO_LONG = "The prompt has {num_tokens} tokens; this model handles {max_positions} positions"
STEP_FAILED = "Generation failed: {error}"
GRAMMAR_REFUSED = "The grammar refused token {token_id}: {error}"
MAX_SEED = 2**63 - 1


@dataclass
class _RequestState:
    """What the engine keeps per request beside the scheduler's Sequence."""

    request: Request
    seq: Sequence
    detokenizer: IncrementalDetokenizer
    stopping: StoppingCriteria
    generator: torch.Generator | None
    seed: int | None
    matcher: Any = None  # llguidance.LLMatcher when the request has a grammar
    prompt_logprobs: list[float | None] | None = None
    num_generated: int = 0
    first_scheduled_at: float = 0.0
    sent_prefill: bool = False


StepResult = tuple[str, GenerationEvent | GenerationError]


class Engine:
    """Synchronous core: add requests, call ``step()``, get (request_id, event|error) pairs."""

    def __init__(
        self,
        loaded: LoadedModel,
        config: EngineConfig,
        scheduler_config: SchedulerConfig | None = None,
        runner: ModelRunner | None = None,
    ) -> None:
        self.loaded = loaded
        self.config = config
        sched_config = scheduler_config or SchedulerConfig.from_engine_config(config)
        self.runner = runner or build_runner(
            loaded, sched_config.num_blocks, sched_config.block_size
        )
        if not self.runner.supports_prefix_caching and sched_config.enable_prefix_caching:
            sched_config = SchedulerConfig(
                **{**sched_config.__dict__, "enable_prefix_caching": False}
            )
        self.scheduler = Scheduler(sched_config)
        self.states: dict[str, _RequestState] = {}
        vocab_size = getattr(getattr(loaded.model, "config", None), "vocab_size", None)
        self.grammars = GrammarCompiler(loaded.tokenizer, vocab_size)
        self.masks = StepMasks(self.grammars)
        self.max_total_tokens = min(loaded.max_position_embeddings, self.scheduler.capacity_tokens)
        self.last_batch_size = 0
        self.num_steps = 0

    @property
    def tokenizer(self):
        return self.loaded.tokenizer

    @property
    def num_waiting(self) -> int:
        return self.scheduler.num_waiting

    @property
    def num_running(self) -> int:
        return self.scheduler.num_running

    @property
    def num_used_blocks(self) -> int:
        """KV cache blocks held by requests (0 when idle: freed blocks keep only their hash)."""
        return self.scheduler.block_manager.num_used_blocks

    @property
    def num_blocks(self) -> int:
        return self.scheduler.block_manager.num_blocks

    @property
    def has_work(self) -> bool:
        return self.scheduler.has_work

    # -- requests ------------------------------------------------------------------------
    def add_request(self, request: Request) -> None:
        if request.request_id in self.states:
            raise ValueError(DUPLICATE_REQUEST_ID)
        if request.num_prompt_tokens >= self.loaded.max_position_embeddings:
            raise ValueError(
                PROMPT_TOO_LONG.format(
                    num_tokens=request.num_prompt_tokens,
                    max_positions=self.loaded.max_position_embeddings,
                )
            )
        params = request.params
        seed = generator = None
        if not params.is_greedy:
            seed = params.seed if params.seed is not None else random.randint(0, MAX_SEED)
            generator = torch.Generator(device=self.loaded.device).manual_seed(seed)
        matcher = self.grammars.matcher(params.grammar) if params.grammar is not None else None
        seq = Sequence(request)
        seq.uses_prefix_cache = not params.decoder_input_details
        state = _RequestState(
            request=request,
            seq=seq,
            detokenizer=IncrementalDetokenizer(
                self.tokenizer,
                request.prompt_token_ids,
                skip_special_tokens=getattr(params, "skip_special_tokens", True),
            ),
            stopping=StoppingCriteria(params, self.loaded.eos_token_ids, self.max_total_tokens),
            generator=generator,
            seed=seed,
            matcher=matcher,
        )
        if params.decoder_input_details:
            state.prompt_logprobs = [None] * request.num_prompt_tokens
        self.states[request.request_id] = state
        self.scheduler.add(seq)

    def abort(self, request_id: str) -> bool:
        """Drop a request now and free its cache; False when it is unknown or already done."""
        state = self.states.pop(request_id, None)
        if state is None:
            return False
        self.scheduler.finish(state.seq)
        self.runner.release(request_id)
        return True

    def abort_all(self) -> list[str]:
        ids = list(self.states)
        for request_id in ids:
            self.abort(request_id)
        return ids

    # -- the step ------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self) -> list[StepResult]:
        """Schedule, run the model, sample, update; one event per token generated."""
        results: list[StepResult] = []
        out = self.scheduler.schedule()
        for seq, message in out.failed:
            self.states.pop(seq.seq_id, None)
            results.append((seq.seq_id, GenerationError(message)))
        for seq in out.preempted:
            self.runner.release(seq.seq_id)
        if out.is_empty:
            self.last_batch_size = 0
            return results
        self.num_steps += 1
        self.last_batch_size = len(out.chunks)
        now = time.monotonic()
        for chunk in out.chunks:
            state = self.states[chunk.seq.seq_id]
            if not state.first_scheduled_at:
                state.first_scheduled_at = now

        sampling = [c for c in out.chunks if c.is_last_chunk]
        constrained = [self.states[c.seq.seq_id].matcher for c in sampling]
        masks = self.masks.start([m for m in constrained if m is not None])
        try:
            wanted = {
                c.seq.seq_id
                for c in out.chunks
                if self.states[c.seq.seq_id].prompt_logprobs is not None
            }
            if out.block_copies:
                self.runner.copy_blocks(out.block_copies)
            run = self.runner.execute(out.chunks, wanted)
            sampled = None
            if sampling:
                rows = [self._sampler_row(self.states[c.seq.seq_id]) for c in sampling]
                mask_row = 0
                for row, matcher in zip(rows, constrained, strict=True):
                    if matcher is not None:
                        row.mask_row, mask_row = mask_row, mask_row + 1
                sampled = sample(run.logits, rows, masks.wait() if masks else None)
        except Exception as exc:
            if masks is not None:
                masks.future.exception()  # never free a matcher llguidance is still reading
            logger.exception("Step failed")
            error = STEP_FAILED.format(error=f"{type(exc).__name__}: {exc}")
            for chunk in out.chunks:
                if self.abort(chunk.seq.seq_id):
                    results.append((chunk.seq.seq_id, GenerationError(error)))
            return results

        for chunk in out.chunks:
            self.scheduler.update_computed(chunk)
        for seq_id, (first, values) in run.prompt_logprobs.items():
            lps = self.states[seq_id].prompt_logprobs
            if lps is not None:
                lps[first : first + len(values)] = values
        if sampled is not None:
            for i, chunk in enumerate(sampling):
                state = self.states[chunk.seq.seq_id]
                try:
                    event = self._append_token(
                        state,
                        sampled.token_ids[i],
                        sampled.logprobs[i],
                        sampled.top_token_ids[i],
                        sampled.top_logprobs[i],
                    )
                except GenerationError as error:  # this request only: the others go on
                    self.abort(chunk.seq.seq_id)
                    results.append((chunk.seq.seq_id, error))
                    continue
                results.append((chunk.seq.seq_id, event))
        return results

    def _sampler_row(self, state: _RequestState) -> SamplerRow:
        seq = state.seq
        return SamplerRow(
            params=state.request.params,
            generator=state.generator,
            prompt_token_ids=state.request.prompt_token_ids,
            output_token_ids=seq.output_token_ids,
        )

    def _token_info(self, token_id: int, logprob: float | None) -> TokenInfo:
        special = token_id in self.loaded.eos_token_ids or self._is_special(token_id)
        return TokenInfo(
            id=token_id,
            text=self.tokenizer.decode([token_id], skip_special_tokens=False),
            logprob=logprob,
            special=special,
        )

    def _is_special(self, token_id: int) -> bool:
        return token_id in set(getattr(self.tokenizer, "all_special_ids", ()) or ())

    def _append_token(
        self,
        state: _RequestState,
        token_id: int,
        logprob: float,
        top_ids: list[int],
        top_logprobs: list[float],
    ) -> GenerationEvent:
        seq = state.seq
        seq.token_ids.append(token_id)
        state.num_generated += 1
        is_eos = token_id in self.loaded.eos_token_ids
        special = is_eos or state.detokenizer.is_special(token_id)
        text = state.detokenizer.add(token_id)
        if is_eos or (special and state.detokenizer.skip_special_tokens):
            text = ""
        finish = state.stopping.check(token_id, text, seq.num_tokens)
        if state.matcher is not None and finish is None:
            if not consume(state.matcher, token_id):
                raise GenerationError(
                    GRAMMAR_REFUSED.format(token_id=token_id, error=state.matcher.get_error())
                )
            if is_complete(state.matcher):
                finish = FinishReason.EOS_TOKEN  # the answer is whole: nothing else may follow
        if finish is not None:
            text += state.detokenizer.flush()
        token_text = state.detokenizer.token_text(token_id) if special else text
        event = GenerationEvent(
            request_id=state.request.request_id,
            index=state.num_generated,
            token=TokenInfo(id=token_id, text=token_text, logprob=logprob, special=special),
            text=text,
            top_tokens=[
                self._token_info(t, lp) for t, lp in zip(top_ids, top_logprobs, strict=True)
            ],
        )
        if not state.sent_prefill:
            state.sent_prefill = True
            if state.prompt_logprobs is not None:
                event.prefill = [
                    TokenInfo(
                        id=t,
                        text=self.tokenizer.decode([t], skip_special_tokens=False),
                        logprob=None if i == 0 else state.prompt_logprobs[i],
                        special=self._is_special(t),
                    )
                    for i, t in enumerate(state.request.prompt_token_ids)
                ]
        if finish is not None:
            self._finish(state, event, finish)
        return event

    def _finish(self, state: _RequestState, event: GenerationEvent, reason: FinishReason) -> None:
        event.finish_reason = reason
        event.num_prompt_tokens = state.request.num_prompt_tokens
        event.num_generated_tokens = state.num_generated
        event.seed = state.seed
        event.queued_at = state.request.arrival_time
        event.first_scheduled_at = state.first_scheduled_at
        event.finished_at = time.monotonic()
        self.states.pop(state.request.request_id, None)
        self.scheduler.finish(state.seq)
        self.runner.release(state.request.request_id)

    def warmup(self) -> None:
        """Run one short request through every stage (allocations, kernels, tokenizer)."""
        from inference.types import SamplingParams

        prompt = list(range(1, 17))
        request = Request("__warmup__", prompt, SamplingParams(max_new_tokens=2, ignore_eos=True))
        self.add_request(request)
        while "__warmup__" in self.states:
            self.step()
        self.last_batch_size = 0


def _put_all(items: list[tuple[asyncio.Queue, GenerationEvent | BaseException]]) -> None:
    for queue, item in items:
        queue.put_nowait(item)


class _Subscriber:
    """The asyncio side of one request: its loop and queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[GenerationEvent | BaseException] = asyncio.Queue()

    def put(self, item: GenerationEvent | BaseException) -> None:
        # A closed loop means nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class AsyncEngine:
    """Continuous batching behind an async generator per request (see ``generate``)."""

    def __init__(self, loaded: LoadedModel, config: EngineConfig) -> None:
        self.loaded = loaded
        self.config = config
        self.engine = Engine(loaded, config)
        if loaded.device.type == "cpu":
            # This thread loaded the model and packed its weights; `start` may run on another.
            release_idle_openmp_pools()
        self.is_ready = False
        self.last_batch_size = 0
        self._subscribers: dict[str, _Subscriber] = {}
        self._inbox: list[Request] = []
        self._aborts: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stopping = False

    @classmethod
    def from_config(cls, model_config: ModelConfig, engine_config: EngineConfig) -> AsyncEngine:
        return cls(load_model(model_config), engine_config)

    @property
    def tokenizer(self):
        return self.loaded.tokenizer

    @property
    def grammars(self) -> GrammarCompiler:
        """The engine's grammar cache: the API compiles (validates) grammars into it."""
        return self.engine.grammars

    @property
    def num_waiting(self) -> int:
        return self.engine.num_waiting + len(self._inbox)

    @property
    def num_running(self) -> int:
        return self.engine.num_running

    @property
    def num_used_blocks(self) -> int:
        return self.engine.num_used_blocks

    @property
    def num_blocks(self) -> int:
        return self.engine.num_blocks

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the background step loop; returns once its warm-up step ran."""
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()

        def report(error: BaseException | None) -> None:
            if started.done():
                return
            if error is None:
                started.set_result(None)
            else:
                started.set_exception(error)

        if self.loaded.device.type == "cpu":
            # Torch work on this thread left an OpenMP pool that would slow every step.
            release_idle_openmp_pools()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, args=(loop, report), name="inference-engine", daemon=True
        )
        self._thread.start()
        try:
            await started
        except BaseException:
            self._thread = None
            raise
        self.is_ready = True

    async def shutdown(self) -> None:
        """Stop the loop; requests still in flight get GenerationError."""
        thread = self._thread
        if thread is None:
            return
        with self._wake:
            self._stopping = True
            self._wake.notify()
        await asyncio.to_thread(thread.join)
        self._thread = None
        self.is_ready = False
        error = GenerationError(ENGINE_SHUT_DOWN)
        for request_id in self.engine.abort_all():
            self._deliver(request_id, error)
        with self._lock:
            pending, self._inbox = self._inbox, []
        for request in pending:
            self._deliver(request.request_id, error)
        self._subscribers.clear()

    # -- requests ------------------------------------------------------------------------
    def generate(self, request: Request) -> AsyncIterator[GenerationEvent]:
        """Stream ``request``'s events; leaving early aborts it (see module docstring).

        Raises EngineOverloadedError at once when ``max_concurrent_requests`` are in flight.
        """
        if len(self._subscribers) >= self.config.max_concurrent_requests:
            raise EngineOverloadedError(ENGINE_OVERLOADED)
        if request.request_id in self._subscribers:
            raise ValueError(DUPLICATE_REQUEST_ID)
        return self._stream(request)

    async def _stream(self, request: Request) -> AsyncIterator[GenerationEvent]:
        if self._thread is None:
            raise GenerationError(ENGINE_NOT_RUNNING)
        subscriber = _Subscriber(asyncio.get_running_loop())
        request_id = request.request_id
        self._subscribers[request_id] = subscriber
        with self._wake:
            self._inbox.append(request)
            self._wake.notify()
        finished = False
        try:
            while True:
                item = await subscriber.queue.get()
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                if item.is_final:
                    finished = True
                yield item
                if finished:
                    return
        finally:
            self._subscribers.pop(request_id, None)
            if not finished:
                self.abort(request_id)

    def abort(self, request_id: str) -> None:
        """Stop a request at the next step boundary and free its cache slot."""
        with self._wake:
            self._aborts.add(request_id)
            self._wake.notify()

    # -- the background thread -----------------------------------------------------------
    def _deliver(self, request_id: str, item: GenerationEvent | BaseException) -> None:
        subscriber = self._subscribers.get(request_id)
        if subscriber is not None:
            subscriber.put(item)

    def _deliver_all(self, results: list[StepResult]) -> None:
        """A step's events: one wake-up per event loop rather than one per request."""
        batches: dict[asyncio.AbstractEventLoop, list] = {}
        for request_id, item in results:
            subscriber = self._subscribers.get(request_id)
            if subscriber is not None:
                batches.setdefault(subscriber.loop, []).append((subscriber.queue, item))
        for loop, items in batches.items():
            # A closed loop means nobody is listening any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_put_all, items)

    def _drain_inbox(self) -> None:
        with self._lock:
            requests, self._inbox = self._inbox, []
            aborts, self._aborts = self._aborts, set()
        for request in requests:
            if request.request_id in aborts:
                continue
            try:
                self.engine.add_request(request)
            except ValueError as exc:
                self._deliver(request.request_id, GenerationError(str(exc)))
        for request_id in aborts:
            self.engine.abort(request_id)

    def _run(self, loop: asyncio.AbstractEventLoop, report) -> None:
        # NOTE: every torch op of the engine runs on this one thread, warm-up included: see
        # `release_idle_openmp_pools` for why a second OpenMP pool costs ~30% per step.
        try:
            prepare_engine_thread(self.loaded.device)
            self.engine.warmup()
        except BaseException as exc:
            logger.exception("Engine warm-up failed")
            loop.call_soon_threadsafe(report, exc)
            return
        loop.call_soon_threadsafe(report, None)
        while True:
            with self._wake:
                while not (self._stopping or self._inbox or self._aborts or self.engine.has_work):
                    self._wake.wait()
                if self._stopping:
                    return
            self._drain_inbox()
            if not self.engine.has_work:
                continue
            try:
                results = self.engine.step()
            except Exception as exc:
                logger.exception("Engine step crashed")
                error = GenerationError(STEP_FAILED.format(error=f"{type(exc).__name__}: {exc}"))
                for request_id in self.engine.abort_all():
                    self._deliver(request_id, error)
                continue
            self.last_batch_size = self.engine.last_batch_size
            self._deliver_all(results)
