"""`POST /invocations`: SageMaker's single route, dispatching on the body's shape as TGI does.

`messages` -> chat completions, `prompt` -> completions, otherwise TGI's `POST /`.
Must not import torch.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from inference.api.errors import MALFORMED_JSON, MalformedRequest, describe_validation_errors
from inference.api.routes.common import ERROR_RESPONSES
from inference.api.routes.generate import compat_generate
from inference.api.routes.openai import chat_completions, completions
from inference.api.schemas import ChatRequest, CompatGenerateRequest, CompletionRequest

router = APIRouter(tags=["Text Generation Inference"])

SAGEMAKER_REQUEST = {
    "oneOf": [
        {"$ref": "#/components/schemas/CompatGenerateRequest"},
        {"$ref": "#/components/schemas/ChatRequest"},
        {"$ref": "#/components/schemas/CompletionRequest"},
    ]
}
BODY = {"schema": SAGEMAKER_REQUEST}


@router.post(
    "/invocations",
    responses=ERROR_RESPONSES,
    summary="Generate tokens from Sagemaker request",
    operation_id="sagemaker_compatibility",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": BODY}}},
)
async def sagemaker_compatibility(request: Request) -> Response:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise MalformedRequest(MALFORMED_JSON.format(exc)) from exc
    try:
        if isinstance(body, dict) and "messages" in body:
            return await chat_completions(ChatRequest.model_validate(body), request)
        if isinstance(body, dict) and "prompt" in body:
            return await completions(CompletionRequest.model_validate(body), request)
        return await compat_generate(CompatGenerateRequest.model_validate(body), request)
    except ValidationError as exc:
        raise describe_validation_errors(list(exc.errors())) from exc
