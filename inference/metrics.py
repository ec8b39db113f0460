"""Prometheus metrics under TGI's names (`tgi_request_count`, `tgi_request_duration`, ...).

Each server owns a `CollectorRegistry`, so several apps can live in one process (tests).
Must not import torch, the engine or the web framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import generate_latest

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TOKEN_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class RequestTimings:
    """Seconds spent in each phase of one request (TGI's header and histogram split)."""

    total: float
    validation: float
    queue: float
    inference: float
    time_per_token: float


class Metrics:
    """The server's metrics; `render()` is the `/metrics` body."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        # NOTE: TGI exposes its counters without the `_total` suffix that prometheus_client's
        # Counter always appends; a Gauge that only ever grows keeps the exact TGI names,
        # so dashboards built for TGI work unchanged.
        self.request_count = Gauge("tgi_request_count", "Total requests", registry=registry)
        self.request_success = Gauge(
            "tgi_request_success", "Requests that finished", registry=registry
        )
        self.request_failure = Gauge(
            "tgi_request_failure", "Requests that failed, by error type", ["err"], registry=registry
        )

        def seconds(name: str, doc: str) -> Histogram:
            return Histogram(name, doc, buckets=DURATION_BUCKETS, registry=registry)

        def tokens(name: str, doc: str) -> Histogram:
            return Histogram(name, doc, buckets=TOKEN_BUCKETS, registry=registry)

        self.request_duration = seconds("tgi_request_duration", "Total time per request")
        self.request_validation_duration = seconds(
            "tgi_request_validation_duration", "Time spent validating the request"
        )
        self.request_queue_duration = seconds(
            "tgi_request_queue_duration", "Time spent in the queue per request"
        )
        self.request_inference_duration = seconds(
            "tgi_request_inference_duration", "Time spent generating per request"
        )
        self.request_mean_time_per_token_duration = seconds(
            "tgi_request_mean_time_per_token_duration", "Mean time per generated token"
        )
        self.request_generated_tokens = tokens(
            "tgi_request_generated_tokens", "Generated tokens per request"
        )
        self.request_input_length = tokens(
            "tgi_request_input_length", "Input token length per request"
        )
        self.request_max_new_tokens = tokens(
            "tgi_request_max_new_tokens", "Maximum new tokens per request"
        )
        self.queue_size = Gauge("tgi_queue_size", "Current queue size", registry=registry)
        self.batch_current_size = Gauge(
            "tgi_batch_current_size", "Current batch size", registry=registry
        )
        self.batch_current_max_tokens = Gauge(
            "tgi_batch_current_max_tokens",
            "Maximum tokens for the current batch",
            registry=registry,
        )
        self.batch_total_tokens = Gauge(
            "tgi_batch_total_tokens", "Maximum amount of tokens in total", registry=registry
        )
        # Beyond TGI's names: the paged KV cache, so that blocks a finished request kept (a
        # leak) show from outside; idle, `kv_cache_blocks_used` is 0.
        self.kv_cache_blocks_used = Gauge(
            "kv_cache_blocks_used", "KV cache blocks held by requests", registry=registry
        )
        self.kv_cache_blocks_total = Gauge(
            "kv_cache_blocks_total", "KV cache blocks in all", registry=registry
        )
        # Speculative decoding (`--speculate`): drafts verified and accepted since start; the
        # acceptance rate is their ratio.
        self.speculate = Gauge(
            "speculative_draft_tokens_per_step", "--speculate: drafts per step", registry=registry
        )
        self.draft_tokens = Gauge(
            "speculative_draft_tokens", "Draft tokens verified", registry=registry
        )
        self.accepted_tokens = Gauge(
            "speculative_accepted_tokens", "Draft tokens accepted", registry=registry
        )

    def bind_engine_gauges(
        self,
        *,
        queue_size: Callable[[], float],
        batch_size: Callable[[], float],
        batch_max_tokens: Callable[[], float],
        batch_total_tokens: float,
        kv_blocks_used: Callable[[], float] = lambda: 0.0,
        kv_blocks_total: float = 0.0,
        speculate: float = 0.0,
        draft_tokens: Callable[[], float] = lambda: 0.0,
        accepted_tokens: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """Read the engine's live state at scrape time instead of pushing it every step."""
        self.queue_size.set_function(queue_size)
        self.batch_current_size.set_function(batch_size)
        self.batch_current_max_tokens.set_function(batch_max_tokens)
        self.batch_total_tokens.set(batch_total_tokens)
        self.kv_cache_blocks_used.set_function(kv_blocks_used)
        self.kv_cache_blocks_total.set(kv_blocks_total)
        self.speculate.set(speculate)
        self.draft_tokens.set_function(draft_tokens)
        self.accepted_tokens.set_function(accepted_tokens)

    def count_request(self) -> None:
        self.request_count.inc()

    def count_failure(self, error_type: str) -> None:
        self.request_failure.labels(err=error_type).inc()

    def observe_input(self, input_length: int, max_new_tokens: int) -> None:
        self.request_input_length.observe(input_length)
        self.request_max_new_tokens.observe(max_new_tokens)

    def observe_success(self, timings: RequestTimings, generated_tokens: int) -> None:
        self.request_success.inc()
        self.request_duration.observe(timings.total)
        self.request_validation_duration.observe(timings.validation)
        self.request_queue_duration.observe(timings.queue)
        self.request_inference_duration.observe(timings.inference)
        self.request_mean_time_per_token_duration.observe(timings.time_per_token)
        self.request_generated_tokens.observe(generated_tokens)

    def num_series(self) -> int:
        """Series in the registry (one per label set): grows only with new label values."""
        return sum(len(metric.samples) for metric in self.registry.collect())

    def render(self) -> bytes:
        return generate_latest(self.registry)
