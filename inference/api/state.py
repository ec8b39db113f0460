"""What every route reads: the engine once it is ready, its limits, metrics, the request permit.

The engine arrives after the port is bound (loading takes seconds to minutes), so routes
ask `require_engine()`, which answers 503 until then. Must not import torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request

from inference import __version__
from inference.api.errors import MODEL_LOAD_FAILED, ModelLoading, Overloaded
from inference.api.validation import Validator
from inference.config import EngineConfig, ServerConfig, served_model_name
from inference.memory import PythonObjects
from inference.metrics import Metrics
from inference.types import ConcurrencyLimiter, EngineClient, EngineOverloadedError, Permit

ROUTER_NAME = "text-generation-router"
MAX_CLIENT_BATCH_SIZE = 4
VALIDATION_WORKERS = 1


@dataclass
class ServerState:
    """Shared by all routes of one app (one event loop, so no locks)."""

    config: ServerConfig
    metrics: Metrics = field(default_factory=Metrics)
    keepalive_interval: float = 15.0
    engine: EngineClient | None = None
    validator: Validator | None = None
    limits: EngineConfig | None = None
    load_error: str | None = None
    compute_type_override: str | None = None  # TGI's COMPUTE_TYPE
    docker_label: str | None = None  # TGI's DOCKER_LABEL
    started_at: float = field(default_factory=time.time)
    python_objects: PythonObjects | None = None  # tracemalloc, with INFERENCE_MEMORY_DEBUG

    @property
    def is_ready(self) -> bool:
        return self.engine is not None and self.engine.is_ready

    @property
    def limiter(self) -> ConcurrencyLimiter | None:
        """The engine's admission count (None until an engine is attached)."""
        return self.engine.limiter if self.engine is not None else None

    @property
    def attached(self) -> EngineClient:
        """The engine; only for code that runs after `admit()` or `require_engine()`."""
        assert self.engine is not None
        return self.engine

    def attach(self, engine: EngineClient) -> None:
        """Serve `engine` from now on; its config's limits become the validation limits."""
        limits = engine.config
        self.limits = limits
        self.validator = Validator(engine.tokenizer, limits, engine.grammars)
        self.metrics.bind_engine_gauges(
            queue_size=lambda: float(engine.load().num_waiting),
            batch_size=lambda: float(engine.load().num_running),
            batch_max_tokens=lambda: float(engine.load().last_batch_size * limits.max_total_tokens),
            batch_total_tokens=float(limits.max_batch_total_tokens),
            kv_blocks_used=lambda: float(engine.load().num_used_blocks),
            kv_blocks_total=float(engine.load().num_blocks),
            speculate=float(engine.load().speculate),
            draft_tokens=lambda: float(engine.load().num_draft_tokens),
            accepted_tokens=lambda: float(engine.load().num_accepted_tokens),
        )
        self.engine = engine

    def require_engine(self) -> EngineClient:
        if not self.is_ready:
            raise self.not_ready()
        return self.attached

    def not_ready(self) -> ModelLoading:
        if self.load_error is not None:
            return ModelLoading(MODEL_LOAD_FAILED.format(self.load_error))
        return ModelLoading()

    def admit(self) -> Permit:
        """Count the request and take the engine's permit, or raise 503/429 (counted as
        failures). The engine's `admit()` is the server's one concurrency check."""
        self.metrics.count_request()
        if not self.is_ready:
            self.metrics.count_failure("unhealthy")
            raise self.not_ready()
        try:
            return self.attached.admit()
        except EngineOverloadedError as exc:
            self.metrics.count_failure("overloaded")
            raise Overloaded() from exc

    # ---------------------------------------------------------------- facts for /info

    @property
    def model_id(self) -> str:
        model_id = self.engine.loaded.model_id if self.engine else self.config.model.model_id
        return served_model_name(model_id)

    @property
    def model_dtype(self) -> str:
        return str(self.engine.loaded.dtype) if self.engine else self.config.model.dtype

    @property
    def quantize(self) -> str | None:
        return self.engine.loaded.quantize if self.engine else None

    @property
    def kv_cache(self) -> tuple[str | None, int | None]:
        """The KV cache's dtype and the tokens it holds (both None while the model loads)."""
        if self.engine is None:
            return None, None
        return self.engine.loaded.kv_cache_dtype, self.engine.loaded.kv_cache_tokens

    @property
    def model_runner(self) -> tuple[str | None, str | None]:
        """Which path serves the model and why (both None while it loads)."""
        if self.engine is None:
            return None, None
        return self.engine.loaded.runner, self.engine.loaded.runner_reason

    @property
    def device_type(self) -> str:
        return self.engine.loaded.device.type if self.engine else self.config.model.device

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


def get_state(request: Request) -> ServerState:
    return request.app.state.server
