"""`POST /invocations`: SageMaker's single route, dispatching on the body's shape as TGI does.

`messages` -> chat completions, `prompt` -> completions, otherwise TGI's `POST /`.
Must not import torch.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from inference.api.contract import OPENAI_STREAM_ERROR, event_stream
from inference.api.errors import MALFORMED_JSON, MalformedRequest, describe_validation_errors
from inference.api.json_body import StrictJsonRoute, parse_json
from inference.api.routes.chat_completions import chat_completions
from inference.api.routes.common import ERROR_RESPONSES
from inference.api.routes.completions import completions
from inference.api.routes.generate import compat_generate
from inference.api.schemas import ChatRequest, CompatGenerateRequest, CompletionRequest

router = APIRouter(tags=["Text Generation Inference"], route_class=StrictJsonRoute)

# NOTE: `messages` picks chat and `prompt` completions whatever else the body holds (every
# request type allows extra keys), so the other branches exclude those keys: exactly one of
# them matches any body this route accepts.
SAGEMAKER_REQUEST = {
    "oneOf": [
        {
            "allOf": [
                {"$ref": "#/components/schemas/CompatGenerateRequest"},
                {"not": {"anyOf": [{"required": ["messages"]}, {"required": ["prompt"]}]}},
            ]
        },
        {"$ref": "#/components/schemas/ChatRequest"},
        {
            "allOf": [
                {"$ref": "#/components/schemas/CompletionRequest"},
                {"not": {"required": ["messages"]}},
            ]
        },
    ]
}
BODY = {"schema": SAGEMAKER_REQUEST}
SAGEMAKER_RESPONSES = {
    200: {
        "description": "What the chosen route answers: JSON, or events when `stream` is true",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/GenerateResponse"},
                        },
                        {"$ref": "#/components/schemas/ChatCompletion"},
                        {"$ref": "#/components/schemas/CompletionFinal"},
                    ]
                }
            },
            "text/event-stream": event_stream(
                "StreamResponse",
                "ErrorResponse",
                "ChatCompletionChunk",
                "Chunk",
                OPENAI_STREAM_ERROR,
                done=True,
            ),
        },
    },
    **ERROR_RESPONSES,
}


@router.post(
    "/invocations",
    responses=SAGEMAKER_RESPONSES,
    summary="Generate tokens from Sagemaker request",
    operation_id="sagemaker_compatibility",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": BODY}}},
)
async def sagemaker_compatibility(request: Request) -> Response:
    try:
        body = parse_json(await request.body())
    except ValueError as exc:
        raise MalformedRequest(MALFORMED_JSON.format(getattr(exc, "msg", exc))) from exc
    try:
        if isinstance(body, dict) and "messages" in body:
            return await chat_completions(ChatRequest.model_validate(body), request)
        if isinstance(body, dict) and "prompt" in body:
            return await completions(CompletionRequest.model_validate(body), request)
        return await compat_generate(CompatGenerateRequest.model_validate(body), request)
    except ValidationError as exc:
        raise describe_validation_errors(list(exc.errors())) from exc
