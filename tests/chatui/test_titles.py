"""chatui.titles: a short title from the task model, or the first five words."""

from __future__ import annotations

import json

import pytest

from chatui.models_config import load_app_config
from chatui.titles import (
    DEFAULT_TITLE,
    TITLE_MAX_NEW_TOKENS,
    clean_title,
    first_words,
    generate_title,
)
from tests.chatui.fake_endpoints import Script, unused_url

QUESTION = "What will the weather be like in Paris tomorrow afternoon?"


def config_for(*urls: str, **env: str):
    models = [
        {"name": f"m{i}", "endpoints": [{"type": "tgi", "url": u}]} for i, u in enumerate(urls)
    ]
    return load_app_config({"MODELS": json.dumps(models), **env})


def test_first_words() -> None:
    assert first_words(QUESTION) == "What will the weather be"
    assert first_words("  one\n two  ") == "one two"
    assert first_words("   ") == DEFAULT_TITLE
    assert len(first_words("x" * 500)) == 100


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ('"Paris Weather Tomorrow".', "Paris Weather Tomorrow"),
        ("Title: Paris weather\nMore text", "Paris weather"),
        ("**Title:** Weekend Forecast", "Weekend Forecast"),
        ("\n\n  # Forecast  \n", "Forecast"),
        ("", ""),
    ],
)
def test_clean_title(raw: str, title: str) -> None:
    assert clean_title(raw) == title


async def test_task_model_writes_the_title(fake_tgi) -> None:
    chat, task = fake_tgi(), fake_tgi(Script(tokens=['"Paris', " Weather", ' Forecast"', "."]))
    config = config_for(chat.url, task.url, TASK_MODEL="m1")
    title = await generate_title(config, QUESTION, "Sunny, around 20 degrees.")
    assert title == "Paris Weather Forecast"
    assert chat.generation_requests == []
    (request,) = task.generation_requests
    assert QUESTION in request.body["inputs"]
    assert "Sunny, around 20 degrees." in request.body["inputs"]
    assert request.body["parameters"]["max_new_tokens"] == TITLE_MAX_NEW_TOKENS


async def test_without_summarization_the_first_words_are_used(fake_tgi) -> None:
    server = fake_tgi()
    config = config_for(server.url, LLM_SUMMARIZATION="false")
    assert await generate_title(config, QUESTION, "answer") == "What will the weather be"
    assert server.requests == []


async def test_failing_or_empty_task_model_falls_back_to_first_words(fake_tgi) -> None:
    assert await generate_title(config_for(unused_url()), QUESTION) == "What will the weather be"
    blank = fake_tgi(Script(tokens=["  ", "\n"]))
    assert await generate_title(config_for(blank.url), QUESTION) == "What will the weather be"


async def test_a_long_answer_instead_of_a_title_falls_back_to_first_words(fake_tgi) -> None:
    rambling = fake_tgi(Script(tokens=["The capital of France is Paris, a city on the Seine."]))
    assert await generate_title(config_for(rambling.url), QUESTION) == "What will the weather be"
