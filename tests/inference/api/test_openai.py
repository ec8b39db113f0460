"""The OpenAI family's own route, `/v1/models` (the generation APIs have their own tests)."""

from __future__ import annotations

import httpx


def test_models_list(url):
    body = httpx.get(url + "/v1/models").json()
    assert body["object"] == "list"
    (model,) = body["data"]
    assert model["id"] == "tiny-random-llama" and model["object"] == "model"
    assert isinstance(model["created"], int) and model["owned_by"]
