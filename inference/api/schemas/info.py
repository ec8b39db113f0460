"""The answers of the operational routes: `/info` and the tokenize routes.

Types only; must not import the engine, torch or any route.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, RootModel


class Info(BaseModel):
    model_id: str
    model_sha: str | None = None
    model_dtype: str
    model_device_type: str
    quantize: str | None = None  # TGI's launcher flag: None for dense weights
    model_pipeline_tag: str | None = "text-generation"
    max_concurrent_requests: int
    max_best_of: int
    max_stop_sequences: int
    max_input_tokens: int
    max_input_length: int
    max_total_tokens: int
    max_batch_total_tokens: int
    max_batch_prefill_tokens: int
    max_batch_size: int
    max_top_n_tokens: int
    waiting_served_ratio: float
    max_waiting_tokens: int
    speculate: int = 0  # TGI's: draft tokens verified per decoding step (0: off)
    validation_workers: int
    max_client_batch_size: int
    router: str
    version: str
    sha: str | None = None
    docker_label: str | None = None
    # Not TGI's: the tokenizer's chat template, so that a client on another machine can
    # render prompts the way the model was trained (None: the tokenizer has none).
    chat_template: str | None = None
    # Not TGI's: the path that serves the model (the fused Llama-family forward, the
    # transformers backend over the paged cache, or the one-sequence-at-a-time fallback) and
    # why; None while the model loads.
    model_runner: Literal["fused", "transformers", "fallback"] | None = None
    model_runner_reason: str | None = None
    # Not TGI's: how the KV cache stores keys and values (`--kv-cache-dtype`: the model's
    # dtype, "int8" or a float8 format) and how many tokens it holds; None while loading.
    kv_cache_dtype: str | None = None
    kv_cache_tokens: int | None = None


class SimpleToken(BaseModel):
    id: int
    text: str
    start: int
    stop: int


class TokenizeResponse(RootModel[list[SimpleToken]]):
    pass


class ChatTokenizeResponse(BaseModel):
    tokenize_response: list[SimpleToken]
    templated_text: str
