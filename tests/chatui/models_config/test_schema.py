"""chatui.models_config.schema and .errors: how one entry of chat-ui's file is read and worded."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chatui.models_config import (
    ERR_BAD_BOOLEAN,
    ERR_NOT_AN_OBJECT,
    ERR_REQUIRED,
    ERR_TYPE,
    ConfigError,
    load_app_config,
    parse_model,
)
from chatui.models_config.errors import describe, entry_label

WHERE = 'MODELS[0] ("m")'


def model(**entry: Any):
    return parse_model({"name": "m", **entry}, WHERE, {"OPENAI_API_KEY": "env-key"})


def error_of(raw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_model(raw, WHERE, {})
    return str(info.value)


def test_null_is_absent_and_defaults_follow_the_name() -> None:
    spec = model(id=None, displayName=None, description=None, unlisted=None, parameters=None)
    assert (spec.id, spec.display_name, spec.description, spec.unlisted) == ("m", "m", "", False)
    assert spec.parameters == {}
    assert model(id="", displayName="").id == "m"


def test_unknown_keys_and_tokenizer_urls_are_logged(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        spec = model(temprature=1, reasoning={"type": "summarize"}, tokenizer={"tokenizerUrl": "x"})
    assert f"{WHERE}: ignoring unknown keys temprature" in caplog.text
    assert "reasoning" not in caplog.text  # known to chat-ui, not used here
    assert "tokenizer URLs are not fetched" in caplog.text
    assert spec.tokenizer is None


def test_parameters_pass_through_and_max_tokens_is_a_fallback() -> None:
    assert model(parameters={"max_tokens": 2.0, "seed": 7, "gone": None}).parameters == {
        "max_new_tokens": 2,
        "seed": 7,
    }
    # With max_new_tokens set, max_tokens is not read at all (not even checked).
    assert model(parameters={"max_new_tokens": 5, "max_tokens": "x"}).parameters == {
        "max_new_tokens": 5
    }


def test_endpoints_read_only_the_keys_of_their_type() -> None:
    (tgi,) = model(endpoints=[{"url": "http://t/", "accessToken": "tok", "apiKey": 3}]).endpoints
    assert (tgi.type, tgi.url, tgi.authorization, tgi.api_key) == (
        "tgi",
        "http://t",
        "Bearer tok",
        None,
    )
    (oai,) = model(endpoints=[{"type": "openai", "url": "http://o/v1/", "weight": 3.0}]).endpoints
    assert (oai.url, oai.weight, oai.api_key, oai.stream_path) == ("http://o/v1", 3, "env-key", "")
    (local,) = model(endpoints=[{"type": "openai"}]).endpoints
    assert local.url == "http://127.0.0.1:8080/v1"


def test_prompt_example_title_defaults_to_the_prompt_start() -> None:
    spec = model(promptExamples=[{"prompt": "p" * 50}, {"prompt": "q", "title": ""}])
    assert spec.prompt_examples == (("p" * 40, "p" * 50), ("", "q"))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (3, ERR_NOT_AN_OBJECT.format(where=WHERE, got="3")),
        (
            {"name": "  "},
            ERR_TYPE.format(where=WHERE, field="name", expected="a non-empty string", got='"  "'),
        ),
        ({}, ERR_REQUIRED.format(where=WHERE, field="name")),
        (
            {"name": "m", "endpoints": [3]},
            ERR_TYPE.format(where=WHERE, field="endpoints[0]", expected="an object", got="3"),
        ),
        (
            {"name": "m", "endpoints": [{"type": 3}]},
            ERR_TYPE.format(where=WHERE, field="endpoints[0].type", expected="a string", got="3"),
        ),
        (
            {"name": "m", "endpoints": [{"url": ""}]},
            ERR_TYPE.format(
                where=WHERE, field="endpoints[0].url", expected="a non-empty string", got='""'
            ),
        ),
        (
            {"name": "m", "promptExamples": [{"title": "t", "prompt": 3}]},
            ERR_TYPE.format(
                where=WHERE, field="promptExamples[0].prompt", expected="a string", got="3"
            ),
        ),
        (
            {"name": "m", "parameters": {"frequency_penalty": "x"}},
            ERR_TYPE.format(
                where=WHERE, field="parameters.frequency_penalty", expected="a number", got='"x"'
            ),
        ),
    ],
)
def test_errors_name_the_entry_the_field_and_the_value(entry: Any, message: str) -> None:
    assert error_of(entry) == message


def test_other_variables_name_themselves() -> None:
    with pytest.raises(ConfigError) as info:
        load_app_config({"USAGE_LIMITS": "{messageLength: 1.5}"})
    assert str(info.value) == ERR_TYPE.format(
        where="USAGE_LIMITS", field="messageLength", expected="an integer >= 0", got="1.5"
    )
    with pytest.raises(ConfigError) as info:
        load_app_config({"OLD_MODELS": "[{id: 'x'}]"})
    assert str(info.value) == ERR_REQUIRED.format(where='OLD_MODELS[0] ("x")', field="name")
    with pytest.raises(ConfigError) as info:
        load_app_config({"LLM_SUMMARIZATION": "maybe"})
    assert str(info.value) == ERR_BAD_BOOLEAN.format(var="LLM_SUMMARIZATION", value="maybe")
    assert load_app_config({"LLM_SUMMARIZATION": " OFF "}).llm_summarization is False


def test_labels_and_shortened_values() -> None:
    assert entry_label("MODELS", 2, {"id": "x"}) == 'MODELS[2] ("x")'
    assert entry_label("MODELS", 2, {"name": ""}) == "MODELS[2]"
    assert describe("a" * 100) == '"' + "a" * 56 + "..."
