"""chatui.models_config: chat-ui's MODELS and the variables around it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chatui.endpoints import backend_for
from chatui.endpoints.openai import list_model_ids
from chatui.models_config import (
    BUNDLED_MODEL_ID,
    DEFAULT_APP_NAME,
    DEFAULT_INFERENCE_URL,
    ERR_DUPLICATE_ID,
    ERR_REQUIRED,
    ERR_SYNTAX,
    ERR_TYPE,
    ERR_UNKNOWN_TASK_MODEL,
    ERR_UNKNOWN_TRANSFER,
    ERR_UNSUPPORTED_ENDPOINT,
    ConfigError,
    bundled_model,
    load_app_config,
)
from config.env import load_env, parse_env_text
from tests.chatui.fake_endpoints import FakeOpenAI

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "env"


def config_from(name: str, **overrides: str):
    env = parse_env_text((FIXTURES / name).read_text(encoding="utf-8"))
    env.update(overrides)
    return load_app_config(env, list_models=list_model_ids)


def stream_url(endpoint) -> str:
    return backend_for(endpoint).stream_url(endpoint)


def models_env(entries: list[dict]) -> dict[str, str]:
    return {"MODELS": json.dumps(entries)}


# -- defaults ---------------------------------------------------------------------------------


def test_without_models_the_bundled_model_runs_on_the_local_server() -> None:
    config = load_app_config({})
    (model,) = config.models
    assert model.id == BUNDLED_MODEL_ID
    assert model.display_name == "SmolLM2 135M Instruct"
    assert model.description
    assert 3 <= len(model.prompt_examples) <= 4
    assert model.parameters["stop"] == ["<|im_end|>"]
    # the bundled server's context: SmolLM2's max_position_embeddings
    assert model.parameters["truncate"] + model.parameters["max_new_tokens"] <= 8192
    assert [(e.type, e.url) for e in model.endpoints] == [("tgi", DEFAULT_INFERENCE_URL)]
    assert config.task_model == model
    assert config.app_name == DEFAULT_APP_NAME
    assert config.llm_summarization is True


def test_inference_url_moves_the_default_endpoint() -> None:
    config = load_app_config({"INFERENCE_URL": "http://10.9.9.9:9000/"})
    assert config.models[0].endpoints[0].url == "http://10.9.9.9:9000"
    config = load_app_config(
        {"INFERENCE_URL": "http://10.9.9.9:9000", **models_env([{"name": "x"}])}
    )
    assert config.models[0].endpoints[0].url == "http://10.9.9.9:9000"


# -- the reference file -------------------------------------------------------------------------


def test_reference_file_verbatim() -> None:
    config = config_from("reference.env.local")
    (model,) = config.models
    assert model.id == model.name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert model.display_name == "SmolLM2 135M"
    assert model.description == "A tiny model that runs on any CPU."
    assert model.website_url == "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"
    assert model.preprompt == ""
    assert model.chat_prompt_template.startswith("{{#each messages}}{{#ifUser}}<|im_start|>user\n")
    assert model.parameters == {
        "temperature": 0.3,
        "top_p": 0.95,
        "repetition_penalty": 1.2,
        "top_k": 50,
        "truncate": 3072,
        "max_new_tokens": 1024,
        "stop": ["<|im_end|>"],
    }
    assert model.prompt_examples == (
        ("Write an email", "Write an email to my boss asking for a day off."),
    )
    first, second = model.endpoints
    assert (first.type, first.url, first.weight, first.authorization) == (
        "tgi",
        "http://10.0.0.1:8080",
        1,
        None,
    )
    assert stream_url(first) == "http://10.0.0.1:8080/"
    assert (second.url, second.weight, second.authorization) == (
        "http://10.0.0.2:8080",
        2,
        "Basic VVNFUjpQQVNT",
    )
    assert stream_url(second) == "http://10.0.0.2:8080/generate_stream"


def test_reference_file_loaded_through_load_env(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "reference.env.local", tmp_path / ".env.local")
    (tmp_path / ".env").write_text("PUBLIC_APP_NAME=From dotenv\n")
    config = load_app_config(load_env(tmp_path, environ={}))
    assert config.models[0].display_name == "SmolLM2 135M"
    assert config.app_name == "From dotenv"


# -- a realistic multi-model file ---------------------------------------------------------------


def test_multi_model_file_with_json5_comments_trailing_commas_unquoted_keys() -> None:
    config = config_from("multi-model.env.local")
    smol, mistral, legacy = config.models
    assert smol.id == "smol" and smol.name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert smol.parameters == {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_new_tokens": 512,
        "truncate": 2048,
        "stop": ["<|im_end|>"],
    }
    assert smol.prompt_examples[1] == ("Translate", "Translate 'good morning' into French.")
    assert [e.weight for e in smol.endpoints] == [1, 2]
    assert smol.endpoints[1].authorization == "Bearer hf_local"  # accessToken
    assert smol.endpoints[1].url == "http://127.0.0.1:8081"

    assert mistral.system_role_supported is False
    assert mistral.parameters["max_new_tokens"] == 1024  # max_tokens alias
    assert mistral.parameters["top_k"] == 50
    (oai,) = mistral.endpoints
    assert (oai.type, oai.url, oai.api_key) == (
        "openai",
        "http://10.1.2.3:8000/v1",
        "sk-local",
    )
    assert oai.default_headers == {"X-Team": "acme"}
    assert oai.default_query == {"api-version": "2024-06-01"}
    assert oai.extra_body == {"repetition_penalty": 1.1}
    assert stream_url(oai) == "http://10.1.2.3:8000/v1/chat/completions"

    assert legacy.unlisted is True
    assert legacy.endpoints[0].completion == "completions"
    assert stream_url(legacy.endpoints[0]) == "http://10.1.2.4:8000/v1/completions"
    assert config.listed_models == (smol, mistral)


def test_multi_model_file_other_variables() -> None:
    config = config_from("multi-model.env.local")
    assert config.app_name == "Acme Chat"
    assert config.app_description == "Internal assistant for the Acme team"
    assert config.disclaimer == "Answers may be wrong; check anything important."
    assert config.task_model.id == "smol"
    assert config.llm_summarization is False
    assert config.messages_before_login == 3
    limits = config.usage_limits
    assert (limits.conversations, limits.messages, limits.message_length) == (50, 200, 8000)
    assert (limits.messages_per_minute, limits.concurrent_generations) == (10, 2)
    assert [(o.id, o.transfer_to) for o in config.old_models] == [
        ("tiiuae/falcon-7b-instruct", "smol"),
        ("bigscience/bloom", None),
    ]


def test_model_lookup_resolves_ids_names_old_models_and_falls_back() -> None:
    config = config_from("multi-model.env.local")
    assert config.model("mistralai/Mistral-7B-Instruct-v0.3").display_name == "Mistral 7B"
    assert config.model("HuggingFaceTB/SmolLM2-135M-Instruct").id == "smol"  # by name
    assert config.model("tiiuae/falcon-7b-instruct").id == "smol"  # transferTo
    assert config.model("bigscience/bloom").id == "smol"  # retired, no transferTo: first
    assert config.model("never/heard-of").id == "smol"
    assert config.find_model("never/heard-of") is None


def test_public_dict_uses_chat_ui_names() -> None:
    smol = config_from("multi-model.env.local").models[0]
    public = smol.to_public_dict()
    assert public["id"] == "smol"
    assert public["displayName"] == "SmolLM2 (fast)"
    assert public["websiteUrl"].startswith("https://huggingface.co/")
    assert public["logoUrl"].endswith(".svg")
    assert public["promptExamples"][0] == {
        "title": "Summarise",
        "prompt": "Summarise this paragraph in one sentence.",
    }
    assert public["preprompt"] == "You are a helpful assistant. Keep answers short."
    assert public["parameters"]["max_new_tokens"] == 512
    assert public["unlisted"] is False
    json.dumps(public)  # serialisable as is
    assert "endpoints" not in public  # never leak URLs or keys


def test_endpoint_without_type_is_tgi_as_in_tgi_docs() -> None:
    config = load_app_config(
        models_env([{"name": "m", "endpoints": [{"url": "https://host:8443/generate_stream"}]}])
    )
    (endpoint,) = config.models[0].endpoints
    assert (endpoint.type, endpoint.url) == ("tgi", "https://host:8443")


def test_task_model_by_name_or_whole_entry() -> None:
    env = models_env([{"name": "a"}, {"name": "b/c", "id": "b"}])
    assert load_app_config({**env, "TASK_MODEL": "b/c"}).task_model.id == "b"
    config = load_app_config({**env, "TASK_MODEL": '{"name": "tasks", "unlisted": true}'})
    assert config.task_model.name == "tasks"
    assert [m.id for m in config.models] == ["a", "b"]


# -- the newer OpenAI-only form -----------------------------------------------------------------


def test_openai_base_url_lists_models_and_applies_overrides() -> None:
    listed = [
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "Qwen/Qwen2.5-7B-Instruct",
    ]
    with FakeOpenAI(models=listed) as server:
        config = config_from("openai-only.env.local", OPENAI_BASE_URL=server.base_url)
        (listing,) = server.requests
    assert (listing.method, listing.path) == ("GET", "/v1/models")
    assert listing.headers["authorization"] == "Bearer sk-test-123"
    assert [m.id for m in config.models] == listed  # "not/served" is ignored
    smol, llama, qwen = config.models
    assert smol.display_name == "SmolLM2 135M"
    assert smol.preprompt == "Be brief."
    assert smol.parameters == {"max_new_tokens": 256, "temperature": 0.4}
    assert llama.unlisted is True and llama.system_role_supported is False
    assert qwen.display_name == "Qwen/Qwen2.5-7B-Instruct"
    for model in config.models:
        (endpoint,) = model.endpoints
        assert (endpoint.type, endpoint.url) == ("openai", server.base_url)
        assert endpoint.api_key == "sk-test-123"
    assert config.app_name == "Router Chat"


def test_openai_base_url_unreachable_falls_back_to_models_as_given(caplog) -> None:
    from tests.chatui.fake_endpoints import unused_url

    base = unused_url() + "/v1"
    config = config_from("openai-only.env.local", OPENAI_BASE_URL=base)
    assert [m.id for m in config.models] == [
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "not/served",
    ]
    assert all(m.endpoints[0].url == base for m in config.models)
    assert "unreachable" in caplog.text


def test_openai_base_url_unreachable_without_models_serves_the_bundled_model_there() -> None:
    from tests.chatui.fake_endpoints import unused_url

    base = unused_url() + "/v1"
    config = load_app_config({"OPENAI_BASE_URL": base}, list_models=list_model_ids)
    (model,) = config.models
    bundled = bundled_model()
    assert (model.id, model.display_name, model.parameters) == (
        bundled.id,
        bundled.display_name,
        bundled.parameters,
    )
    assert [(e.type, e.url) for e in model.endpoints] == [("openai", base)]


# -- bad files ------------------------------------------------------------------------------------


def test_syntax_error_names_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        config_from("bad-syntax.env.local")
    assert str(info.value).startswith(
        ERR_SYNTAX.format(var="MODELS", line=4, column=39, reason="")[:-1]
    )


def test_wrong_field_type_names_entry_and_field() -> None:
    with pytest.raises(ConfigError) as info:
        config_from("bad-type.env.local")
    assert str(info.value) == ERR_TYPE.format(
        where='MODELS[1] ("hot-model")',
        field="parameters.temperature",
        expected="a number >= 0",
        got='"hot"',
    )


def test_unsupported_endpoint_type_names_entry_and_type() -> None:
    with pytest.raises(ConfigError) as info:
        config_from("bad-endpoint.env.local")
    assert str(info.value) == ERR_UNSUPPORTED_ENDPOINT.format(
        where='MODELS[1] ("llama-local")', type="ollama"
    )
    assert str(info.value) == (
        "MODELS[1] (\"llama-local\"): endpoint type 'ollama' is not supported; "
        "use 'tgi' or 'openai'"
    )


def test_missing_name() -> None:
    with pytest.raises(ConfigError) as info:
        config_from("missing-name.env.local")
    assert str(info.value) == ERR_REQUIRED.format(where="MODELS[2]", field="name")


@pytest.mark.parametrize(
    ("entry", "field", "expected"),
    [
        (
            {"endpoints": [{"type": "tgi", "url": "http://x", "weight": 0}]},
            "endpoints[0].weight",
            "an integer >= 1",
        ),
        (
            {"endpoints": [{"type": "tgi", "url": "http://x", "weight": "2"}]},
            "endpoints[0].weight",
            "an integer >= 1",
        ),
        ({"endpoints": [{"type": "tgi"}]}, None, None),
        ({"parameters": {"stop": "<|im_end|>"}}, "parameters.stop", "a list of strings"),
        ({"parameters": {"max_new_tokens": 1.5}}, "parameters.max_new_tokens", "an integer >= 1"),
        ({"parameters": {"top_k": True}}, "parameters.top_k", "an integer >= 1"),
        ({"unlisted": "yes"}, "unlisted", "true or false"),
        ({"preprompt": 3}, "preprompt", "a string"),
        ({"promptExamples": [{"title": "t"}]}, None, None),
        ({"endpoints": []}, "endpoints", "a non-empty list of endpoints"),
        (
            {"endpoints": [{"type": "openai", "completion": "chat"}]},
            "endpoints[0].completion",
            "'chat_completions' or 'completions'",
        ),
        (
            {"endpoints": [{"type": "openai", "defaultHeaders": {"X": 1}}]},
            "endpoints[0].defaultHeaders",
            "an object of strings",
        ),
    ],
)
def test_field_types_are_checked(entry: dict, field: str | None, expected: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        load_app_config(models_env([{"name": "m", **entry}]))
    message = str(info.value)
    assert message.startswith('MODELS[0] ("m"): ')
    if field is not None:
        assert f'"{field}" must be {expected}, got ' in message
    else:
        assert "is required" in message


def test_duplicate_ids_unknown_task_model_and_transfer_target() -> None:
    with pytest.raises(ConfigError) as info:
        load_app_config(models_env([{"name": "a"}, {"name": "b", "id": "a"}]))
    assert str(info.value) == ERR_DUPLICATE_ID.format(where='MODELS[1] ("b")', id="a")

    with pytest.raises(ConfigError) as info:
        load_app_config({**models_env([{"name": "a"}]), "TASK_MODEL": "zzz"})
    assert str(info.value) == ERR_UNKNOWN_TASK_MODEL.format(name="zzz")

    with pytest.raises(ConfigError) as info:
        load_app_config(
            {**models_env([{"name": "a"}]), "OLD_MODELS": '[{name: "old", transferTo: "b"}]'}
        )
    assert str(info.value) == ERR_UNKNOWN_TRANSFER.format(where='OLD_MODELS[0] ("old")', target="b")


def test_other_variables_are_checked() -> None:
    with pytest.raises(ConfigError, match="USAGE_LIMITS"):
        load_app_config({"USAGE_LIMITS": '{"messages": -1}'})
    with pytest.raises(ConfigError, match="MESSAGES_BEFORE_LOGIN"):
        load_app_config({"MESSAGES_BEFORE_LOGIN": "three"})
    with pytest.raises(ConfigError, match="LLM_SUMMARIZATION"):
        load_app_config({"LLM_SUMMARIZATION": "maybe"})
    with pytest.raises(ConfigError, match="USAGE_LIMITS is not valid JSON5: line 1"):
        load_app_config({"USAGE_LIMITS": "{messages: }"})
    with pytest.raises(ConfigError, match="MODELS must be a list"):
        load_app_config({"MODELS": '{"name": "a"}'})
