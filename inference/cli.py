"""`python -m inference`: flags and environment (TGI launcher names) -> a running server.

Every flag can also come from the environment variable TGI's launcher reads (`--max-total-tokens`
<- `MAX_TOTAL_TOKENS`); a flag on the command line wins. The port is bound at once and the
model loads behind it; if it cannot load, one error line is printed and the exit code is 1.
This is the one module that reads the environment for the server. Must not import Django.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields

from inference.config import (
    DEFAULT_PAYLOAD_LIMIT,
    DEVICES,
    DTYPES,
    KV_CACHE_DTYPES,
    QUANTIZE,
    EngineConfig,
    ModelConfig,
    ServerConfig,
)
from inference.env import parse_bool
from inference.memory import bound_native_caches
from inference.types import EngineClient

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MEMORY_DEBUG_ENV = "INFERENCE_MEMORY_DEBUG"  # `GET /debug/memory` and tracemalloc when true

# flag -> (env var, type, help); engine limits default to None = "derive from the model".
ENGINE_FLAGS: dict[str, tuple[str, type, str]] = {
    "max_concurrent_requests": ("MAX_CONCURRENT_REQUESTS", int, "requests in flight before 429"),
    "max_best_of": ("MAX_BEST_OF", int, "largest `best_of`"),
    "max_stop_sequences": ("MAX_STOP_SEQUENCES", int, "most `stop` sequences per request"),
    "max_top_n_tokens": ("MAX_TOP_N_TOKENS", int, "largest `top_n_tokens`"),
    "max_input_tokens": ("MAX_INPUT_TOKENS", int, "prompt tokens (default: max_total - 1)"),
    "max_total_tokens": (
        "MAX_TOTAL_TOKENS",
        int,
        "prompt + generated tokens (default: the model's context, max_position_embeddings)",
    ),
    "max_batch_prefill_tokens": ("MAX_BATCH_PREFILL_TOKENS", int, "prompt tokens per prefill"),
    "max_batch_total_tokens": ("MAX_BATCH_TOTAL_TOKENS", int, "tokens held by a batch"),
    "max_batch_size": ("MAX_BATCH_SIZE", int, "sequences per batch"),
    "waiting_served_ratio": ("WAITING_SERVED_RATIO", float, "waiting/running ratio to prefill"),
    "max_waiting_tokens": ("MAX_WAITING_TOKENS", int, "decode steps before waiting ones join"),
    "speculate": (
        "SPECULATE",
        int,
        "n-gram (prompt-lookup) draft tokens verified per decoding step (default 0: off)",
    ),
}


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value not in (None, "") else None


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The parser; each default comes from the environment (argparse converts string defaults)."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m inference",
        description="A text-generation server compatible with Hugging Face TGI.",
    )
    parser.add_argument(
        "--model-id",
        default=_env(env, "MODEL_ID") or "bundled",
        help="`bundled`, a local HF directory, a .gguf file or a hub id [env MODEL_ID]",
    )
    parser.add_argument("--revision", default=_env(env, "REVISION"), help="[env REVISION]")
    parser.add_argument(
        "--dtype", default=_env(env, "DTYPE") or "auto", choices=DTYPES, help="[env DTYPE]"
    )
    parser.add_argument(
        "--device", default=_env(env, "DEVICE") or "auto", choices=DEVICES, help="[env DEVICE]"
    )
    parser.add_argument(
        "--quantize",
        default=_env(env, "QUANTIZE") or "auto",
        choices=QUANTIZE,
        help="weights in 4 or 8 bits: auto serves a GGUF's own quantized weights where this "
        "CPU runs them faster; int8/int4 quantize any model at load; none: dense [env QUANTIZE]",
    )
    parser.add_argument(
        "--kv-cache-dtype",
        default=_env(env, "KV_CACHE_DTYPE") or "auto",
        choices=KV_CACHE_DTYPES,
        help="how the KV cache stores keys and values: auto = the model's dtype; int8 (per "
        "token and head scales) or fp8 (fp8 = fp8_e4m3fn) fit about 2x the tokens (4x against "
        "float32) in the same memory [env KV_CACHE_DTYPE]",
    )
    parser.add_argument(
        "--hostname", default=_env(env, "HOSTNAME") or "127.0.0.1", help="[env HOSTNAME]"
    )
    parser.add_argument("--port", type=int, default=_env(env, "PORT") or "8080", help="[env PORT]")
    parser.add_argument(
        "--payload-limit",
        type=int,
        default=_env(env, "PAYLOAD_LIMIT") or str(DEFAULT_PAYLOAD_LIMIT),
        help="largest request body in bytes; a larger one gets 413 before it is read "
        "[env PAYLOAD_LIMIT]",
    )
    parser.add_argument(
        "--api-key",
        default=_env(env, "API_KEY"),
        help="require `Authorization: Bearer <key>` on every route but health, info, metrics, "
        "models and docs [env API_KEY]",
    )
    parser.add_argument(
        "--cors-allow-origin",
        action="append",
        default=None,
        help="an origin browsers may call from (repeat it, or a comma list); none by default "
        "[env CORS_ALLOW_ORIGIN]",
    )
    try:
        prefix_caching = parse_bool(env.get("PREFIX_CACHING"), True, name="PREFIX_CACHING")
    except ValueError as exc:
        parser.error(str(exc))
    parser.add_argument(
        "--no-prefix-caching",
        dest="prefix_caching",
        action="store_false",
        default=prefix_caching,
        help="compute every prompt in full, reusing no cached KV (TGI's PREFIX_CACHING=0) "
        "[env PREFIX_CACHING]",
    )
    for name, (env_name, kind, text) in ENGINE_FLAGS.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=_env(env, env_name),
            help=f"{text} [env {env_name}]",
        )
    return parser


def cors_origins(given: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The allowed origins: the flags' (each may be a comma list), else CORS_ALLOW_ORIGIN's."""
    values = given if given else [_env(environ, "CORS_ALLOW_ORIGIN") or ""]
    return tuple(o.strip() for value in values for o in value.split(",") if o.strip())


def engine_config_for(
    args: argparse.Namespace, max_position_embeddings: int | None
) -> EngineConfig:
    """Explicit limits as given; the others derived as TGI derives them: the whole context
    (``max_total_tokens`` = the model's positions, ``max_input_tokens`` one less), and a KV
    cache of at least one full-context sequence (65,536 tokens by default: 8 full contexts of
    the bundled model, or 64 streams of 1,024).

    ``max_position_embeddings`` None: the model is not read yet; the result only checks the
    explicit limits and stands in for ``/info`` until the model has loaded."""
    given = {name: getattr(args, name) for name in ENGINE_FLAGS if getattr(args, name) is not None}
    defaults = {f.name: f.default for f in fields(EngineConfig)}
    total = given.get("max_total_tokens") or max_position_embeddings
    if total is None:
        total = max(defaults["max_total_tokens"], given.get("max_input_tokens", 0) + 1)
    given.setdefault("max_total_tokens", total)
    given.setdefault("max_input_tokens", total - 1)
    given.setdefault(
        "max_batch_prefill_tokens",
        max(defaults["max_batch_prefill_tokens"], given["max_input_tokens"]),
    )
    given.setdefault("max_batch_total_tokens", max(defaults["max_batch_total_tokens"], total))
    return EngineConfig(**given, enable_prefix_caching=getattr(args, "prefix_caching", True))


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[ServerConfig, argparse.Namespace]:
    """The server config (limits checked against an unknown model) and the raw arguments."""
    env = os.environ if environ is None else environ
    parser = build_parser(env)
    args = parser.parse_args(argv)
    try:
        model = ModelConfig(
            model_id=args.model_id,
            revision=args.revision,
            dtype=args.dtype,
            device=args.device,
            quantize=args.quantize,
            kv_cache_dtype=args.kv_cache_dtype,
        )
        config = ServerConfig(
            hostname=args.hostname,
            port=args.port,
            model=model,
            engine=engine_config_for(args, None),
            payload_limit=args.payload_limit,
            api_key=args.api_key,
            cors_allow_origins=cors_origins(args.cors_allow_origin, env),
            memory_debug=parse_bool(env.get(MEMORY_DEBUG_ENV), False, name=MEMORY_DEBUG_ENV),
        )
    except ValueError as exc:
        parser.error(str(exc))
    return config, args


def make_engine_factory(
    config: ServerConfig, args: argparse.Namespace
) -> Callable[[], EngineClient]:
    """Load the model, derive the limits it allows, and build the (not yet started) engine."""

    def factory() -> EngineClient:
        from transformers.utils import logging as transformers_logging

        from inference.engine.async_engine import AsyncEngine
        from inference.model.loader import load_model

        transformers_logging.disable_progress_bar()  # log lines, not a redrawn bar
        loaded = load_model(config.model)
        limits = engine_config_for(args, loaded.max_position_embeddings)
        return AsyncEngine(loaded, limits)

    return factory


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; 1 when the model cannot be loaded."""
    import uvicorn

    from inference.api.app import create_app, one_line

    config, args = parse_args(argv)
    configure_logging()
    # NOTE: before oneDNN's first primitive (the model's weights are prepacked as it loads)
    logger.info("Native cache capacities: %s", bound_native_caches())
    if config.api_key is not None:  # NOTE: that a key is required, never the key
        logger.info("API key required: send `Authorization: Bearer <key>` (--api-key)")
    else:
        logger.warning(
            "No API key: anyone who reaches %s:%d may generate", config.hostname, config.port
        )
    failures: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_load_failure(exc: BaseException) -> None:
        failures.append(exc)
        if server is not None:
            server.should_exit = True

    app = create_app(
        None,
        config,
        engine_factory=make_engine_factory(config, args),
        on_load_failure=on_load_failure,
        compute_type=os.environ.get("COMPUTE_TYPE") or None,
        docker_label=os.environ.get("DOCKER_LABEL") or None,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.hostname,
            port=config.port,
            log_config=None,
            access_log=True,
            timeout_graceful_shutdown=5,
        )
    )
    server.run()
    if failures:
        print(f"error: {one_line(failures[0])}", file=sys.stderr)
        return 1
    return 0 if server.started else 1
