"""Frozen configuration built once at start-up from CLI flags and the environment.

Names follow TGI's launcher (``--max-batch-prefill-tokens`` -> ``max_batch_prefill_tokens``).
The CLI parser lives in ``inference.cli``; nothing here reads the environment at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZE = ("auto", "none", "int8", "int4")
KV_CACHE_DTYPES = ("auto", "int8", "fp8", "fp8_e4m3fn", "fp8_e5m2")  # TGI's, plus int8
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_PAYLOAD_LIMIT = 2_000_000  # TGI's `--payload-limit` default, in bytes


@dataclass(frozen=True)
class EngineConfig:
    """Limits the scheduler and validation enforce (TGI router names)."""

    max_concurrent_requests: int = 128
    max_best_of: int = 2
    max_stop_sequences: int = 4
    max_top_n_tokens: int = 5
    max_input_tokens: int = 4095
    max_total_tokens: int = 4096
    max_batch_prefill_tokens: int = 4096
    max_batch_total_tokens: int = 65536
    max_batch_size: int = 64
    waiting_served_ratio: float = 0.3
    max_waiting_tokens: int = 20
    enable_prefix_caching: bool = True
    speculate: int = 0  # TGI's `--speculate`: n-gram draft tokens verified per step (0: off)

    def __post_init__(self) -> None:
        if self.speculate < 0:
            raise ValueError("`speculate` must be >= 0")
        if self.max_input_tokens >= self.max_total_tokens:
            raise ValueError(
                f"`max_input_tokens` ({self.max_input_tokens}) must be < "
                f"`max_total_tokens` ({self.max_total_tokens})"
            )
        if self.max_batch_prefill_tokens < 1:
            raise ValueError("`max_batch_prefill_tokens` must be >= 1")
        if self.max_batch_total_tokens < self.max_total_tokens:
            raise ValueError(
                f"`max_batch_total_tokens` ({self.max_batch_total_tokens}) must be >= "
                f"`max_total_tokens` ({self.max_total_tokens})"
            )
        if self.max_concurrent_requests < 1:
            raise ValueError("`max_concurrent_requests` must be >= 1")


BUNDLED_MODEL_ID = "bundled"  # the model id that names the bundled model
BUNDLED_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what /info calls it


def served_model_name(model_id: str) -> str:
    """The name clients see for ``model_id``: the bundled model's published name, else the id."""
    return BUNDLED_MODEL_NAME if model_id == BUNDLED_MODEL_ID else model_id


@dataclass(frozen=True)
class ModelConfig:
    """Which weights to load and where to run them."""

    model_id: str = BUNDLED_MODEL_ID  # the bundled model, a local HF dir, a .gguf file, a hub id
    revision: str | None = None
    dtype: str = "auto"  # auto: the fastest on this device, measured on CPU (model.loader)
    device: str = "auto"  # auto: cuda when available
    quantize: str = "auto"  # auto: a GGUF's own 4/8-bit weights where faster (quant_loader)
    kv_cache_dtype: str = "auto"  # auto: the model's dtype (inference.model.kv_format)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"`dtype` must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.quantize not in QUANTIZE:
            raise ValueError(
                f"`quantize` must be one of {', '.join(QUANTIZE)}, got {self.quantize!r}"
            )
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise ValueError(
                f"`kv_cache_dtype` must be one of {', '.join(KV_CACHE_DTYPES)}, "
                f"got {self.kv_cache_dtype!r}"
            )
        if self.device not in DEVICES:
            raise ValueError(f"`device` must be one of {', '.join(DEVICES)}, got {self.device!r}")


@dataclass(frozen=True)
class ServerConfig:
    """Everything `python -m inference` was started with."""

    hostname: str = "127.0.0.1"
    port: int = 8080
    model: ModelConfig = field(default_factory=ModelConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    payload_limit: int = DEFAULT_PAYLOAD_LIMIT  # bytes of request body; more gets 413
    # `Authorization: Bearer <api_key>` on every route but the open ones (None: no key).
    api_key: str | None = field(default=None, repr=False)  # NOTE: never in a repr or a log
    cors_allow_origins: tuple[str, ...] = ()  # browsers' origins allowed; none by default
    memory_debug: bool = False  # `GET /debug/memory` and tracemalloc (INFERENCE_MEMORY_DEBUG)

    def __post_init__(self) -> None:
        if self.payload_limit < 1:
            raise ValueError("`payload_limit` must be >= 1")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("`api_key` must not be empty")
