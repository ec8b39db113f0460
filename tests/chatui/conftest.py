"""Fixtures for the chat backend: a configuration pointing at fake endpoints, owners
(anonymous sessions or users) with their cookies, and fresh endpoint state for every test.

Every test that generates talks to FakeTGI / FakeOpenAI over real sockets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from chatui.chat_config import get_chat_config, set_chat_config
from chatui.models_config import AppConfig, load_app_config
from chatui.streaming.hub import get_hub
from tests.chatui.fake_endpoints import (  # noqa: F401  (fixtures)
    FakeOpenAI,
    FakeTGI,
    Script,
    fake_openai,
    fake_tgi,
)
from tests.chatui.helpers import MODEL_A, MODEL_B, Owner, make_owner


@pytest.fixture(autouse=True)
def _fresh_endpoint_state() -> Iterator[None]:
    """Health marks and cached templates must not leak from one test to the next."""
    get_hub().endpoints.reset()
    yield
    get_hub().endpoints.reset()


@pytest.fixture
def configure() -> Iterator[Callable[..., AppConfig]]:
    """`configure(**env)` swaps the loaded chat configuration for the test."""
    original = get_chat_config()

    def apply(**env: str) -> AppConfig:
        config = load_app_config(env)
        set_chat_config(config)
        return config

    yield apply
    set_chat_config(original)


@dataclass
class Endpoints:
    tgi: FakeTGI
    openai: FakeOpenAI
    configure: Callable[..., AppConfig]

    def env(self, **extra: str) -> dict[str, str]:
        models = [
            {
                "id": MODEL_A,
                "name": "org/model-a",
                "displayName": "Model A",
                "preprompt": "You are model A.",
                "parameters": {"max_new_tokens": 64, "stop": ["<|im_end|>"]},
                "endpoints": [{"type": "tgi", "url": self.tgi.url}],
            },
            {
                "id": MODEL_B,
                "name": "org/model-b",
                "endpoints": [{"type": "openai", "baseURL": self.openai.base_url}],
            },
            {
                "id": "hidden",
                "name": "org/hidden",
                "unlisted": True,
                "endpoints": [{"type": "tgi", "url": self.tgi.url}],
            },
        ]
        return {"MODELS": json.dumps(models), "LLM_SUMMARIZATION": "false", **extra}

    def reconfigure(self, **extra: str) -> AppConfig:
        return self.configure(**self.env(**extra))


@pytest.fixture
def endpoints(fake_tgi, fake_openai, configure) -> Endpoints:  # noqa: F811
    """Two listed models (A on FakeTGI, B on FakeOpenAI) and an unlisted one."""
    result = Endpoints(
        tgi=fake_tgi(Script(tokens=["Hello", ",", " world", "!"])),
        openai=fake_openai(Script(tokens=["Hi", " from", " B"])),
        configure=configure,
    )
    result.reconfigure()
    return result


@pytest.fixture
def owner_factory() -> Callable[..., Owner]:
    return make_owner


@pytest.fixture
def chat_models(configure) -> Callable[..., AppConfig]:
    """Models A, B and an unlisted one on addresses nothing answers (HTTP-only tests);
    returns `reconfigure(**extra_env)`."""
    fake = Endpoints(
        tgi=FakeTGI(), openai=FakeOpenAI(), configure=configure
    )  # never started: port 0
    fake.reconfigure()
    return fake.reconfigure
