"""Operational routes: `/health`, `/info`, `/metrics`, `/tokenize`, `/chat_tokenize`.

Must not import torch.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from inference.api.errors import ApiError
from inference.api.json_body import StrictJsonRoute
from inference.api.prompts import render_chat, tokens_json
from inference.api.routes.chat_completions import chat_parameters
from inference.api.routes.common import JSON_ERROR, count_failure, error_responses, off_loop
from inference.api.schemas import (
    ChatRequest,
    ChatTokenizeResponse,
    GenerateRequest,
    Info,
    Message,
    TokenizeResponse,
)
from inference.api.state import MAX_CLIENT_BATCH_SIZE, VALIDATION_WORKERS, get_state
from inference.api.tools import ToolPlan, plan_tools
from inference.api.validation import require_inputs
from inference.metrics import METRICS_CONTENT_TYPE

router = APIRouter(tags=["Text Generation Inference"], route_class=StrictJsonRoute)

HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Everything is working fine (an empty body)"},
    503: {"description": "Text generation inference is down", **JSON_ERROR},
}


def tokenize_responses(not_found: str) -> dict[int | str, dict[str, Any]]:
    """TGI documents a 404; this server always has a tokenizer, so it never sends one."""
    return {404: {"description": not_found, **JSON_ERROR}, **error_responses(422, 413, 503)}


@router.get(
    "/health",
    response_class=Response,
    responses=HEALTH_RESPONSES,
    summary="Health check method",
    operation_id="health",
)
async def health(request: Request) -> Response:
    get_state(request).require_engine()
    return Response(status_code=200)


# TGI answers health checks on these too; `GET /` is documented (it shares `POST /`'s path).
router.add_api_route("/ping", health, methods=["GET"], include_in_schema=False)
router.add_api_route(
    "/",
    health,
    methods=["GET"],
    response_class=Response,
    responses=HEALTH_RESPONSES,
    summary="Health check method (TGI's Inference API route)",
    operation_id="health_root",
)


@router.get(
    "/info",
    response_model=Info,
    summary="Text Generation Inference endpoint info",
    operation_id="get_model_info",
)
async def get_model_info(request: Request) -> Info:
    state = get_state(request)
    limits = state.limits or state.config.engine
    runner, runner_reason = state.model_runner
    kv_cache_dtype, kv_cache_tokens = state.kv_cache
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
        speculate=state.engine.load().speculate if state.is_ready else limits.speculate,
        validation_workers=VALIDATION_WORKERS,
        max_client_batch_size=MAX_CLIENT_BATCH_SIZE,
        router=state.router,
        version=state.version,
        sha=None,
        docker_label=None,
        chat_template=chat_template(state),
        model_runner=runner,
        model_runner_reason=runner_reason,
        kv_cache_dtype=kv_cache_dtype,
        kv_cache_tokens=kv_cache_tokens,
    )


def chat_template(state: Any) -> str | None:
    """The loaded tokenizer's chat template (a named set: its default one)."""
    template = getattr(getattr(state.engine, "tokenizer", None), "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    return template if isinstance(template, str) else None


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


def tokenize_body(tokenizer: Any, text: str, keep: int | None) -> bytes:
    """`/tokenize`'s body (built in a worker: encoding 20 MB of JSON takes a while too)."""
    return tokens_json(tokenizer, text, add_special_tokens=True, keep=keep).encode()


def chat_tokenize_body(tokenizer: Any, messages: list[Message], tools: ToolPlan | None) -> bytes:
    """`/chat_tokenize`'s body: the rendered template and its tokens (built in a worker)."""
    text = render_chat(tokenizer, messages, tools)
    tokens = tokens_json(tokenizer, text, add_special_tokens=False)
    templated = json.dumps(text, ensure_ascii=False)
    return f'{{"tokenize_response":{tokens},"templated_text":{templated}}}'.encode()


@router.post(
    "/tokenize",
    response_model=TokenizeResponse,
    responses=tokenize_responses("No tokenizer found"),
    summary="Tokenize inputs",
    operation_id="tokenize",
)
async def tokenize(body: GenerateRequest, request: Request) -> Response:
    """Every token of `inputs` (the last `truncate` when given); parameters are checked as
    `/generate` checks them, so the two routes refuse the same bodies, token limits aside."""
    state = get_state(request)
    engine = state.require_engine()
    assert state.validator is not None
    state.validator.check_parameters(body.parameters)
    state.validator.check_new_tokens_bound(body.parameters)
    require_inputs(body.inputs)
    content = await off_loop(tokenize_body, engine.tokenizer, body.inputs, body.parameters.truncate)
    return Response(content, media_type="application/json")


@router.post(
    "/chat_tokenize",
    response_model=ChatTokenizeResponse,
    responses=tokenize_responses("Failed to tokenize ChatRequest"),
    summary="Template and tokenize ChatRequest",
    operation_id="get_chat_tokenize",
)
async def chat_tokenize(body: ChatRequest, request: Request) -> Response:
    state = get_state(request)
    state.metrics.count_request()
    engine = state.require_engine()
    assert state.validator is not None
    try:
        parameters = chat_parameters(state, body)
        state.validator.check_parameters(
            parameters, stream=body.stream, presence_penalty=body.presence_penalty
        )
        state.validator.check_new_tokens_bound(parameters)
        content = await off_loop(
            chat_tokenize_body, engine.tokenizer, body.messages, plan_tools(body)
        )
    except ApiError as error:
        count_failure(state, error)
        raise
    return Response(content, media_type="application/json")
