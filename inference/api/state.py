"""What every route reads: the engine once it is ready, its limits, metrics, the request permit.

The engine arrives after the port is bound (loading takes seconds to minutes), so routes
ask `require_engine()`, which answers 503 until then. Must not import torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from inference import __version__
from inference.api.errors import MODEL_LOAD_FAILED, ModelLoading, Overloaded
from inference.api.validation import Validator
from inference.config import EngineConfig, ServerConfig
from inference.metrics import Metrics
from inference.model_source import BUNDLED_MODEL_ID, BUNDLED_MODEL_NAME

ROUTER_NAME = "text-generation-router"
MAX_CLIENT_BATCH_SIZE = 4
VALIDATION_WORKERS = 1


class Permit:
    """One admitted request; release it exactly once (idempotent)."""

    def __init__(self, limiter: ConcurrencyLimiter) -> None:
        self._limiter = limiter
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._limiter.in_flight -= 1


class ConcurrencyLimiter:
    """`max_concurrent_requests`: the next request beyond it is refused at once (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def acquire(self) -> Permit:
        if self.in_flight >= self.limit:
            raise Overloaded()
        self.in_flight += 1
        return Permit(self)


@dataclass
class ServerState:
    """Shared by all routes of one app (one event loop, so no locks)."""

    config: ServerConfig
    metrics: Metrics = field(default_factory=Metrics)
    keepalive_interval: float = 15.0
    engine: Any = None
    validator: Validator | None = None
    limits: EngineConfig | None = None
    limiter: ConcurrencyLimiter | None = None
    load_error: str | None = None
    compute_type_override: str | None = None  # TGI's COMPUTE_TYPE
    docker_label: str | None = None  # TGI's DOCKER_LABEL
    started_at: float = field(default_factory=time.time)

    @property
    def is_ready(self) -> bool:
        return self.engine is not None and bool(getattr(self.engine, "is_ready", True))

    def attach(self, engine: Any) -> None:
        """Serve `engine` from now on; its config's limits become the validation limits."""
        limits = engine_limits(engine, self.config.engine)
        self.limits = limits
        self.validator = Validator(engine.tokenizer, limits, getattr(engine, "grammars", None))
        self.limiter = ConcurrencyLimiter(limits.max_concurrent_requests)
        self.metrics.bind_engine_gauges(
            queue_size=lambda: float(getattr(engine, "num_waiting", 0)),
            batch_size=lambda: float(getattr(engine, "num_running", 0)),
            batch_max_tokens=lambda: float(
                getattr(engine, "last_batch_size", 0) * limits.max_total_tokens
            ),
            batch_total_tokens=float(limits.max_batch_total_tokens),
            kv_blocks_used=lambda: float(getattr(engine, "num_used_blocks", 0)),
            kv_blocks_total=float(getattr(engine, "num_blocks", 0)),
        )
        self.engine = engine

    def require_engine(self) -> Any:
        if not self.is_ready:
            raise self.not_ready()
        return self.engine

    def not_ready(self) -> ModelLoading:
        if self.load_error is not None:
            return ModelLoading(MODEL_LOAD_FAILED.format(self.load_error))
        return ModelLoading()

    def admit(self) -> Permit:
        """Count the request and take a permit, or raise 503/429 (counted as failures)."""
        self.metrics.count_request()
        if not self.is_ready:
            self.metrics.count_failure("unhealthy")
            raise self.not_ready()
        assert self.limiter is not None
        try:
            return self.limiter.acquire()
        except Overloaded:
            self.metrics.count_failure("overloaded")
            raise

    # ---------------------------------------------------------------- facts for /info

    @property
    def loaded(self) -> Any:
        return getattr(self.engine, "loaded", None)

    @property
    def model_id(self) -> str:
        model_id = str(getattr(self.loaded, "model_id", None) or self.config.model.model_id)
        return BUNDLED_MODEL_NAME if model_id == BUNDLED_MODEL_ID else model_id

    @property
    def model_dtype(self) -> str:
        return str(getattr(self.loaded, "dtype", self.config.model.dtype))

    @property
    def quantize(self) -> str | None:
        return getattr(self.loaded, "quantize", None)

    @property
    def device_type(self) -> str:
        device = getattr(self.loaded, "device", None)
        return str(getattr(device, "type", None) or self.config.model.device)

    @property
    def compute_type(self) -> str:
        """`x-compute-type`: `COMPUTE_TYPE` as in TGI, else the device the model runs on."""
        if self.compute_type_override:
            return self.compute_type_override
        device = self.device_type
        return "cpu" if device == "cpu" else f"gpu+{device}"

    @property
    def version(self) -> str:
        return __version__

    @property
    def system_fingerprint(self) -> str:
        return f"{self.version}-{self.docker_label or 'native'}"

    @property
    def router(self) -> str:
        return ROUTER_NAME


def engine_limits(engine: Any, fallback: EngineConfig) -> EngineConfig:
    """The EngineConfig the engine was built with (attribute name tolerant), else `fallback`."""
    for name in ("engine_config", "config"):
        value = getattr(engine, name, None)
        if isinstance(value, EngineConfig):
            return value
    return fallback


def get_state(request: Request) -> ServerState:
    return request.app.state.server
