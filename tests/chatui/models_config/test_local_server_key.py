"""The local inference server's key (INFERENCE_API_KEY) reaches every endpoint on that server
that brings no credentials of its own, and no other."""

from __future__ import annotations

import json

from chatui.models_config import DEFAULT_INFERENCE_URL, load_app_config


def models_env(entries: list[dict]) -> dict[str, str]:
    return {"MODELS": json.dumps(entries)}


def test_endpoints_on_the_local_server_send_its_key_unless_they_bring_their_own() -> None:
    local = DEFAULT_INFERENCE_URL
    entries = [
        {"name": "tgi-local", "endpoints": [{"type": "tgi", "url": local + "/"}]},
        {"name": "tgi-own", "endpoints": [{"url": local, "authorization": "Bearer mine"}]},
        {"name": "tgi-elsewhere", "endpoints": [{"url": "http://10.0.0.3:8080"}]},
        {"name": "openai-local", "endpoints": [{"type": "openai"}]},
        {"name": "openai-elsewhere", "endpoints": [{"type": "openai", "baseURL": "http://h/v1"}]},
    ]
    config = load_app_config({"INFERENCE_API_KEY": "k3y", **models_env(entries)})
    endpoints = {m.id: m.endpoints[0] for m in config.models}
    assert endpoints["tgi-local"].authorization == "Bearer k3y"
    assert endpoints["tgi-own"].authorization == "Bearer mine"
    assert endpoints["tgi-elsewhere"].authorization is None
    assert endpoints["openai-local"].api_key == "k3y"
    assert endpoints["openai-elsewhere"].api_key is None
    without_key = load_app_config(models_env(entries)).models[0].endpoints[0]
    assert without_key.authorization is None
