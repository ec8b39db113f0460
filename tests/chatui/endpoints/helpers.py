"""Shared by the endpoint tests: a model of given endpoints, and running its stream."""

from __future__ import annotations

from typing import Any

import httpx

from chatui.endpoints import StreamChunk, StreamResult, backend_for, stream_generation
from chatui.models_config import ModelSpec, parse_model
from chatui.prompting import ChatMessage
from chatui.streaming.hub import get_hub
from tests.chatui.fake_endpoints import FakeOpenAI, FakeTGI

HISTORY = [ChatMessage("user", "Hello?")]
CHATML_PROMPT = (
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def model(*endpoints: dict[str, Any], **fields: Any) -> ModelSpec:
    entry = {"name": "test/model", "endpoints": list(endpoints), **fields}
    entry.setdefault("parameters", {"stop": ["<|im_end|>"], "max_new_tokens": 64})
    return parse_model(entry, 'MODELS[0] ("test/model")', {})


def tgi(server: FakeTGI | str, weight: int = 1, **extra: Any) -> dict[str, Any]:
    url = server if isinstance(server, str) else server.url
    return {"type": "tgi", "url": url, "weight": weight, **extra}


def openai(server: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {"type": "openai", "baseURL": server.base_url, **extra}


async def collect(stream) -> tuple[list[str], StreamResult]:
    chunks, results = [], []
    async for item in stream:
        if isinstance(item, StreamChunk):
            assert not results, "a chunk after the result"
            chunks.append(item.text)
        else:
            results.append(item)
    assert len(results) == 1
    return chunks, results[0]


def run(m: ModelSpec, client: httpx.AsyncClient, **kwargs: Any):
    kwargs.setdefault("messages", HISTORY)
    kwargs.setdefault("preprompt", "Be brief.")
    kwargs.setdefault("state", get_hub().endpoints)
    return stream_generation(m, client=client, **kwargs)


async def fetch_chat_template(endpoint, **kwargs: Any) -> str | None:
    """The template the process's endpoint state finds for `endpoint`."""
    return await get_hub().endpoints.templates.get(endpoint, backend_for(endpoint), **kwargs)
