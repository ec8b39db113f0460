"""Operational routes: `/health`, `/info`, `/metrics`, `/tokenize`, `/chat_tokenize`.

Must not import torch.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from inference.api.errors import ApiError
from inference.api.prompts import render_chat, simple_tokens
from inference.api.routes.common import count_failure
from inference.api.schemas import (
    ChatRequest,
    ChatTokenizeResponse,
    ErrorResponse,
    GenerateRequest,
    Info,
    TokenizeResponse,
)
from inference.api.state import MAX_CLIENT_BATCH_SIZE, VALIDATION_WORKERS, get_state
from inference.metrics import METRICS_CONTENT_TYPE

router = APIRouter(tags=["Text Generation Inference"])


@router.get(
    "/health",
    responses={
        200: {"description": "Everything is working fine"},
        503: {"model": ErrorResponse, "description": "Text generation inference is down"},
    },
    summary="Health check method",
    operation_id="health",
)
async def health(request: Request) -> Response:
    get_state(request).require_engine()
    return Response(status_code=200)


# TGI also answers health checks on these (not in its OpenAPI document).
router.add_api_route("/ping", health, methods=["GET"], include_in_schema=False)
router.add_api_route("/", health, methods=["GET"], include_in_schema=False)


@router.get(
    "/info",
    response_model=Info,
    summary="Text Generation Inference endpoint info",
    operation_id="get_model_info",
)
async def get_model_info(request: Request) -> Info:
    state = get_state(request)
    limits = state.limits or state.config.engine
    return Info(
        model_id=state.model_id,
        model_sha=state.config.model.revision,
        model_dtype=state.model_dtype,
        model_device_type=state.device_type,
        quantize=state.quantize,
        model_pipeline_tag="text-generation",
        max_concurrent_requests=limits.max_concurrent_requests,
        max_best_of=limits.max_best_of,
        max_stop_sequences=limits.max_stop_sequences,
        max_input_tokens=limits.max_input_tokens,
        max_input_length=limits.max_input_tokens,
        max_total_tokens=limits.max_total_tokens,
        max_batch_total_tokens=limits.max_batch_total_tokens,
        max_batch_prefill_tokens=limits.max_batch_prefill_tokens,
        max_batch_size=limits.max_batch_size,
        max_top_n_tokens=limits.max_top_n_tokens,
        waiting_served_ratio=limits.waiting_served_ratio,
        max_waiting_tokens=limits.max_waiting_tokens,
        validation_workers=VALIDATION_WORKERS,
        max_client_batch_size=MAX_CLIENT_BATCH_SIZE,
        router=state.router,
        version=state.version,
        sha=None,
        docker_label=None,
    )


@router.get(
    "/metrics",
    responses={
        200: {
            "description": "Prometheus Metrics",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
    summary="Prometheus metrics scrape endpoint",
    operation_id="metrics",
)
async def metrics(request: Request) -> Response:
    return Response(get_state(request).metrics.render(), media_type=METRICS_CONTENT_TYPE)


@router.post(
    "/tokenize",
    response_model=TokenizeResponse,
    responses={
        404: {"model": ErrorResponse, "description": "No tokenizer found"},
        422: {"model": ErrorResponse, "description": "Input validation error"},
    },
    summary="Tokenize inputs",
    operation_id="tokenize",
)
async def tokenize(body: GenerateRequest, request: Request) -> TokenizeResponse:
    engine = get_state(request).require_engine()
    return TokenizeResponse(simple_tokens(engine.tokenizer, body.inputs, add_special_tokens=True))


@router.post(
    "/chat_tokenize",
    response_model=ChatTokenizeResponse,
    responses={
        404: {"model": ErrorResponse, "description": "Failed to tokenize ChatRequest"},
        422: {"model": ErrorResponse, "description": "Input validation error"},
    },
    summary="Template and tokenize ChatRequest",
    operation_id="get_chat_tokenize",
)
async def chat_tokenize(body: ChatRequest, request: Request) -> ChatTokenizeResponse:
    state = get_state(request)
    state.metrics.count_request()
    engine = state.require_engine()
    try:
        text = render_chat(engine.tokenizer, body.messages)
    except ApiError as error:
        count_failure(state, error)
        raise
    tokens = simple_tokens(engine.tokenizer, text, add_special_tokens=False)
    return ChatTokenizeResponse(tokenize_response=tokens, templated_text=text)
