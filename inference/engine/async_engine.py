"""The asyncio bridge: ``AsyncEngine`` runs an ``Engine`` on one background thread and
streams each request's events to its own asyncio queue; it is also the one admission point.

Events go to a request's queue with ``loop.call_soon_threadsafe``. New requests and aborts are
handed to the thread through an inbox it drains at every step boundary, so the scheduler, the
cache and the model are only ever touched by that thread. ``admit()`` hands out at most
``max_concurrent_requests`` permits; a client request holds one for all its sequences.
Must not import Django or the web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from inference.config import EngineConfig, ModelConfig
from inference.cpu import prepare_engine_thread, release_idle_openmp_pools
from inference.engine.diagnostics import cache_sizes, torch_counters
from inference.engine.engine import DUPLICATE_REQUEST_ID, Engine, StepResult, step_failed
from inference.engine.grammar import GrammarCompiler
from inference.memory import PeriodicTrim
from inference.model.loader import LoadedModel, load_model
from inference.types import (
    ENGINE_OVERLOADED,
    ConcurrencyLimiter,
    EngineLoad,
    GenerationError,
    GenerationEvent,
    Permit,
    Request,
)

logger = logging.getLogger(__name__)

ENGINE_NOT_RUNNING = "The engine is not running"
ENGINE_SHUT_DOWN = "The engine shut down before the request finished"
__all__ = ["ENGINE_NOT_RUNNING", "ENGINE_OVERLOADED", "ENGINE_SHUT_DOWN", "AsyncEngine"]


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
        self.tokenizer = loaded.tokenizer
        # The engine's grammar cache: the API compiles (validates) grammars into it.
        self.grammars: GrammarCompiler = self.engine.grammars
        if loaded.device.type == "cpu":
            # This thread loaded the model and packed its weights; `start` may run on another.
            release_idle_openmp_pools()
        self.limiter = ConcurrencyLimiter(config.max_concurrent_requests)
        self.is_ready = False
        self.last_batch_size = 0
        self._subscribers: dict[str, _Subscriber] = {}
        self._inbox: list[Request] = []
        self._aborts: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.trimmer = PeriodicTrim()  # on the engine thread, between steps

    @classmethod
    def from_config(cls, model_config: ModelConfig, engine_config: EngineConfig) -> AsyncEngine:
        return cls(load_model(model_config), engine_config)

    @property
    def num_waiting(self) -> int:
        return self.engine.num_waiting + len(self._inbox)

    @property
    def num_running(self) -> int:
        return self.engine.num_running

    def load(self) -> EngineLoad:
        """Read from the event loop while the engine thread steps: each count is one read."""
        return EngineLoad(
            num_waiting=self.num_waiting,
            num_running=self.num_running,
            last_batch_size=self.last_batch_size,
            num_used_blocks=self.engine.num_used_blocks,
            num_blocks=self.engine.num_blocks,
            speculate=self.engine.speculate,
            num_draft_tokens=self.engine.num_draft_tokens,
            num_accepted_tokens=self.engine.num_accepted_tokens,
        )

    def diagnostics(self) -> dict[str, Any]:
        """The memory report's engine part: caches with their limits, torch's settings."""
        trims = {"count": self.trimmer.num_trims, "last_ms": self.trimmer.last_duration_s * 1e3}
        in_flight = {
            "subscribers": len(self._subscribers),
            "inbox": len(self._inbox),
            "pending_aborts": len(self._aborts),
        }
        caches = cache_sizes(self.engine, in_flight)
        return {"caches": caches, "torch": torch_counters(), "malloc_trim": trims}

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
    def admit(self) -> Permit:
        """A permit for one client request, or EngineOverloadedError at once when
        ``max_concurrent_requests`` are held. The only concurrency check of the server."""
        return self.limiter.acquire()

    def generate(
        self, request: Request, permit: Permit | None = None
    ) -> AsyncIterator[GenerationEvent]:
        """Stream ``request``'s events; leaving early aborts it (see module docstring).

        ``permit``: the caller's, from ``admit()`` (the sequences of one client request share
        it). Without one the stream is admitted here, raising EngineOverloadedError at once
        when none is free, and gives it back when it ends.
        NOTE: iterate the stream once at least: an async generator never started runs no
        ``finally``, so its own permit would stay held.
        """
        if request.request_id in self._subscribers:
            raise ValueError(DUPLICATE_REQUEST_ID)
        own = self.admit() if permit is None else None
        return self._stream(request, own)

    async def _stream(self, request: Request, own: Permit | None) -> AsyncIterator[GenerationEvent]:
        request_id = request.request_id
        finished = False
        try:
            if self._thread is None:
                finished = True
                raise GenerationError(ENGINE_NOT_RUNNING)
            subscriber = _Subscriber(asyncio.get_running_loop())
            self._subscribers[request_id] = subscriber
            with self._wake:
                self._inbox.append(request)
                self._wake.notify()
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
            if own is not None:
                own.release()

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
                error = step_failed(exc)
                for request_id in self.engine.abort_all():
                    self._deliver(request_id, error)
                continue
            self.last_batch_size = self.engine.last_batch_size
            self._deliver_all(results)
            self.trimmer.after_step()
