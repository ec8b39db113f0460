"""`create_app(engine, server_config)`: the FastAPI application of the TGI-compatible server.

The app answers at once; the engine is started (or first built by `engine_factory`, in a
worker thread) in the background, and generation routes answer 503 until it is warmed up.
Must not import torch; the engine is any `inference.types.EngineClient`
(`inference.engine.async_engine.AsyncEngine` in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from inference import __version__
from inference.api.auth import ApiKey
from inference.api.docs import DESCRIPTION, TITLE, install_docs
from inference.api.errors import install_error_handlers
from inference.api.payload import PayloadLimit
from inference.api.routes import debug, generate, info, openai, sagemaker
from inference.api.sse import DEFAULT_KEEPALIVE_SECONDS
from inference.api.state import ServerState
from inference.config import ServerConfig
from inference.memory import PythonObjects
from inference.types import EngineClient

logger = logging.getLogger(__name__)

EngineFactory = Callable[[], EngineClient]
LoadFailureHook = Callable[[BaseException], None]


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def bring_up(
    state: ServerState,
    engine: EngineClient | None,
    engine_factory: EngineFactory | None,
    on_load_failure: LoadFailureHook | None,
) -> EngineClient | None:
    """Build (if needed) and start the engine, then let requests through."""
    try:
        if engine is None:
            assert engine_factory is not None
            logger.info("Loading model %s", state.config.model.model_id)
            engine = await asyncio.to_thread(engine_factory)
        await engine.start()  # NOTE: the engine warms up (one short request) before returning
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        state.load_error = one_line(exc)
        if on_load_failure is not None:
            on_load_failure(exc)  # NOTE: the hook reports it (the CLI prints one line, exits 1)
        else:
            logger.error("Model failed to load: %s", state.load_error)
        return engine
    state.attach(engine)
    if state.config.memory_debug:
        # NOTE: traced from here on: tracing the model's load would slow it several-fold
        state.python_objects = PythonObjects()
    logger.info(
        "Ready: serving %s (%s on %s)", state.model_id, state.model_dtype, state.device_type
    )
    return engine


def create_app(
    engine: EngineClient | None,
    server_config: ServerConfig | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    keepalive_interval: float = DEFAULT_KEEPALIVE_SECONDS,
    on_load_failure: LoadFailureHook | None = None,
    compute_type: str | None = None,
    docker_label: str | None = None,
) -> FastAPI:
    """The server for `engine` (or for whatever `engine_factory` builds once started).

    The app's lifespan starts the engine and shuts it down; pass an engine that is not
    started yet. `compute_type` and `docker_label` override what `x-compute-type` and
    `system_fingerprint` report (TGI reads them from COMPUTE_TYPE and DOCKER_LABEL).
    """
    if engine is None and engine_factory is None:
        raise ValueError("create_app needs an engine or an engine_factory")
    config = server_config or ServerConfig()
    state = ServerState(
        config=config,
        keepalive_interval=keepalive_interval,
        compute_type_override=compute_type,
        docker_label=docker_label,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(bring_up(state, engine, engine_factory, on_load_failure))
        try:
            yield
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                started = await task
                if started is not None:
                    await started.shutdown()

    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        separate_input_output_schemas=False,
    )
    app.state.server = state
    # NOTE: added first, so it runs last: an oversized body is refused before anything reads
    # it (the layers outside it read headers only).
    app.add_middleware(PayloadLimit, limit=config.payload_limit)
    if config.api_key is not None:
        app.add_middleware(ApiKey, api_key=config.api_key)
    # Outermost: a browser's preflight (which carries no key) is answered here. Unlike TGI,
    # no origin is allowed unless `--cors-allow-origin` names it.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(config.cors_allow_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "Authorization"],
    )
    install_error_handlers(app)
    app.include_router(generate.router)
    app.include_router(openai.router)
    app.include_router(sagemaker.router)
    app.include_router(info.router)
    if config.memory_debug:
        app.include_router(debug.router)
    install_docs(app)
    return app
