"""The OpenAI-compatible API family as one router: chat completions, completions, models.

The two generation APIs live in `chat_completions` and `completions` (what they share in
`openai_common`); `GET /v1/models`, which belongs to neither, lives here. The order of the
routes is the order of the OpenAPI document's paths.
Must not import torch.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from inference.api.json_body import StrictJsonRoute
from inference.api.routes import chat_completions, completions
from inference.api.schemas import ModelInfo, ModelsInfo
from inference.api.state import get_state

models_router = APIRouter(tags=["Text Generation Inference"], route_class=StrictJsonRoute)


@models_router.get(
    "/v1/models",
    response_model=ModelsInfo,
    summary="Get model info",
    operation_id="openai_get_model_info",
)
async def openai_get_model_info(request: Request) -> ModelsInfo:
    state = get_state(request)
    model_id = state.model_id
    return ModelsInfo(
        data=[ModelInfo(id=model_id, created=int(state.started_at), owned_by=model_id)]
    )


# NOTE: no tags of its own: each included route keeps its module's (they would add up).
router = APIRouter()
router.include_router(chat_completions.router)
router.include_router(completions.router)
router.include_router(models_router)
