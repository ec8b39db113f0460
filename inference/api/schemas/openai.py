"""What the OpenAI-compatible APIs share: stream options, usage and the `/v1/models` list.

Types only; must not import the engine, torch or any route.
"""

from __future__ import annotations

from pydantic import BaseModel

from inference.api.schemas.common import StrictBody


class StreamOptions(StrictBody):
    include_usage: bool = False


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelInfo(BaseModel):
    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelsInfo(BaseModel):
    object: str = "list"
    data: list[ModelInfo]
