"""chatui.titles: a short title from the task model, or the first sentence cut cleanly."""

from __future__ import annotations

import json

import pytest

from chatui.models_config import load_app_config
from chatui.titles import (
    DEFAULT_TITLE,
    ELLIPSIS,
    FALLBACK_MAX_CHARS,
    TITLE_MAX_NEW_TOKENS,
    clean_title,
    fallback_title,
    generate_title,
)
from tests.chatui.fake_endpoints import Script, unused_url

QUESTION = "What will the weather be like in Paris tomorrow afternoon? Answer in short."
FALLBACK = "What will the weather be like in Paris tomorrow…"


def config_for(*urls: str, **env: str):
    models = [
        {"name": f"m{i}", "endpoints": [{"type": "tgi", "url": u}]} for i, u in enumerate(urls)
    ]
    return load_app_config({"MODELS": json.dumps(models), **env})


def test_fallback_is_the_first_sentence_cut_at_a_word_boundary() -> None:
    assert fallback_title(QUESTION) == FALLBACK
    assert fallback_title("What is 1234*5678? Use the long method.") == "What is 1234*5678?"
    assert fallback_title("  one   two \n three") == "one two"
    assert fallback_title("   ") == DEFAULT_TITLE
    assert fallback_title("x" * 500) == "x" * (FALLBACK_MAX_CHARS - 1) + ELLIPSIS
    long = fallback_title("word " * 40)
    assert len(long) <= FALLBACK_MAX_CHARS and long.endswith("word" + ELLIPSIS)


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
    title = await generate_title(config, QUESTION)
    assert title == "Paris Weather Forecast"
    assert chat.generation_requests == []
    (request,) = task.generation_requests
    assert QUESTION in request.body["inputs"]
    assert request.body["parameters"]["max_new_tokens"] == TITLE_MAX_NEW_TOKENS


async def test_without_summarization_the_first_sentence_is_used(fake_tgi) -> None:
    server = fake_tgi()
    config = config_for(server.url, LLM_SUMMARIZATION="false")
    assert await generate_title(config, QUESTION) == FALLBACK
    assert server.requests == []


async def test_failing_or_empty_task_model_falls_back_to_the_first_sentence(fake_tgi) -> None:
    assert await generate_title(config_for(unused_url()), QUESTION) == FALLBACK
    blank = fake_tgi(Script(tokens=["  ", "\n"]))
    assert await generate_title(config_for(blank.url), QUESTION) == FALLBACK


async def test_a_long_answer_instead_of_a_title_falls_back_to_the_first_sentence(fake_tgi) -> None:
    rambling = fake_tgi(Script(tokens=["The capital of France is Paris, a city on the Seine."]))
    assert await generate_title(config_for(rambling.url), QUESTION) == FALLBACK
