"""The chat configuration: chat-ui's `MODELS` (JSON5) and the variables around it, validated.

Reads a merged environment mapping (see `config.env.load_env`) and returns an immutable
`AppConfig`. Both of chat-ui's forms are accepted unchanged:

- the per-model form: ``MODELS`` lists models, each with ``tgi``/``openai`` endpoints (none: the
  local inference server at ``INFERENCE_URL``);
- the newer form: ``OPENAI_BASE_URL`` (+ ``OPENAI_API_KEY``) names one OpenAI-compatible server
  whose ``GET /models`` lists the models, and ``MODELS`` entries override them by id or name.

Every field read is type-checked; a bad file raises `ConfigError` whose message names the entry
(index and name) and the field, or the line and column of a JSON5 syntax error.

Must not import Django, `chatui.models` or `chatui.endpoints` (whose `openai.list_model_ids`
the caller passes in for ``OPENAI_BASE_URL``): it makes no HTTP call of its own.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import json5

logger = logging.getLogger(__name__)

DEFAULT_INFERENCE_URL = "http://127.0.0.1:8080"
DEFAULT_APP_NAME = "ChatUI"
DEFAULT_APP_DESCRIPTION = "Chat with open models running on your own server."
DEFAULT_DISCLAIMER = "Generated content may be inaccurate or false."

ENDPOINT_TYPES = ("tgi", "openai")
COMPLETION_MODES = ("chat_completions", "completions")

# Messages (tests import these). `where` is e.g. 'MODELS[1] ("name")'.
ERR_SYNTAX = "{var} is not valid JSON5: line {line}, column {column}: {reason}"
ERR_SYNTAX_NO_POSITION = "{var} is not valid JSON5: {reason}"
ERR_NOT_A_LIST = "{var} must be a list of objects, got {got}"
ERR_NOT_AN_OBJECT = "{where} must be an object, got {got}"
ERR_REQUIRED = '{where}: "{field}" is required'
ERR_TYPE = '{where}: "{field}" must be {expected}, got {got}'
ERR_UNSUPPORTED_ENDPOINT = "{where}: endpoint type {type!r} is not supported; use 'tgi' or 'openai'"
ERR_NO_MODELS = "MODELS is an empty list; list at least one model or leave MODELS unset"
ERR_DUPLICATE_ID = '{where}: id "{id}" is used by another model'
ERR_UNKNOWN_TASK_MODEL = 'TASK_MODEL "{name}" is not the id or name of a model in MODELS'
ERR_UNKNOWN_TRANSFER = '{where}: "transferTo" "{target}" is not the id of a model in MODELS'
ERR_BAD_INTEGER = '{var} must be an integer >= 0, got "{value}"'
ERR_BAD_BOOLEAN = '{var} must be true or false, got "{value}"'

# Keys chat-ui knows in a model entry; anything else is probably a typo and is logged.
_KNOWN_MODEL_KEYS = frozenset(
    (
        *("id", "name", "displayName", "description", "logoUrl", "websiteUrl", "modelUrl"),
        *("datasetName", "datasetUrl", "preprompt", "chatPromptTemplate", "promptExamples"),
        *("parameters", "endpoints", "tokenizer", "systemRoleSupported", "unlisted"),
        *("multimodal", "multimodalAcceptedMimetypes", "tools", "reasoning", "embeddingModel"),
        "isRouter",
    )
)
_FLOAT_PARAMETERS = ("temperature", "top_p", "repetition_penalty")
_SIGNED_PARAMETERS = ("presence_penalty", "frequency_penalty")
_INT_PARAMETERS = ("top_k", "truncate", "max_new_tokens")


ListModels = Callable[[str, str | None], list[str] | None]


class ConfigError(Exception):
    """The configuration is invalid; the message says where and why, in the file's terms."""


@dataclass(frozen=True)
class Endpoint:
    """Where one model's answers come from.

    ``url`` is the TGI server root (a ``/generate_stream`` suffix stripped, remembered in
    ``stream_path``) or, for ``openai``, the base URL ending in ``/v1``. What is sent where is
    `chatui.endpoints`' business.
    """

    type: Literal["tgi", "openai"]
    url: str
    weight: int = 1
    authorization: str | None = None  # tgi: full Authorization header value
    api_key: str | None = None  # openai: sent as "Bearer <key>"
    completion: Literal["chat_completions", "completions"] = "chat_completions"
    default_headers: dict[str, str] = field(default_factory=dict, hash=False)
    default_query: dict[str, str] = field(default_factory=dict, hash=False)
    extra_body: dict[str, Any] = field(default_factory=dict, hash=False)
    # tgi: "/" (chat-ui posts to the root) or "/generate_stream"; openai: "" (the route
    # follows `completion`, see chatui.endpoints.openai)
    stream_path: str = "/"

    @property
    def key(self) -> str:
        """Identifies the endpoint in the health registry and the template cache."""
        return f"{self.type}:{self.url}{self.stream_path}"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the picker, as configured (chat-ui field names in snake_case)."""

    id: str
    name: str
    display_name: str
    description: str = ""
    website_url: str | None = None
    logo_url: str | None = None
    model_url: str | None = None
    preprompt: str = ""
    chat_prompt_template: str | None = None
    tokenizer: str | None = None
    system_role_supported: bool = True
    parameters: dict[str, Any] = field(default_factory=dict, hash=False)
    prompt_examples: tuple[tuple[str, str], ...] = ()
    unlisted: bool = False
    multimodal: bool = False
    # chat-ui's `multimodalAcceptedMimetypes`: the image types a multimodal model takes.
    multimodal_accepted_mimetypes: tuple[str, ...] = ("image/*",)
    tools: bool = False  # offered the registered tools (chatui.tools) before each answer
    endpoints: tuple[Endpoint, ...] = ()

    def to_public_dict(self) -> dict[str, Any]:
        """The shape `GET /api/models` returns (chat-ui's camelCase names)."""
        return {
            "id": self.id,
            "name": self.name,
            "displayName": self.display_name,
            "description": self.description,
            "websiteUrl": self.website_url,
            "logoUrl": self.logo_url,
            "modelUrl": self.model_url,
            "promptExamples": [{"title": t, "prompt": p} for t, p in self.prompt_examples],
            "preprompt": self.preprompt,
            "unlisted": self.unlisted,
            "multimodal": self.multimodal,
            "multimodalAcceptedMimetypes": list(self.multimodal_accepted_mimetypes),
            "tools": self.tools,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True)
class OldModel:
    """A retired model: its conversations open with ``transfer_to`` (or the first model)."""

    id: str
    name: str
    display_name: str
    transfer_to: str | None = None


@dataclass(frozen=True)
class UsageLimits:
    """Per-user limits as configured: ``None`` when unset, 0 for "no limit" (chatui.limits
    fills an anonymous visitor's unset ones with its defaults)."""

    conversations: int | None = None
    messages: int | None = None
    message_length: int | None = None
    messages_per_minute: int | None = None
    concurrent_generations: int | None = None


@dataclass(frozen=True)
class AppConfig:
    """Everything the chat app is configured with, built once at start-up."""

    models: tuple[ModelSpec, ...]
    task_model: ModelSpec
    app_name: str = DEFAULT_APP_NAME
    app_description: str = DEFAULT_APP_DESCRIPTION
    disclaimer: str = DEFAULT_DISCLAIMER
    llm_summarization: bool = True
    old_models: tuple[OldModel, ...] = ()
    usage_limits: UsageLimits = field(default_factory=UsageLimits)
    messages_before_login: int | None = None

    @property
    def listed_models(self) -> tuple[ModelSpec, ...]:
        """The models of the picker (`unlisted` ones are reachable only by id)."""
        return tuple(m for m in self.models if not m.unlisted)

    def find_model(self, model_id: str | None) -> ModelSpec | None:
        """The model with this id (or name), without fallback."""
        if model_id is None:
            return None
        for model in self.models:
            if model.id == model_id:
                return model
        for model in self.models:
            if model.name == model_id:
                return model
        return None

    def model(self, model_id: str | None) -> ModelSpec:
        """The model for a stored id: itself, a retired model's successor, else the first."""
        found = self.find_model(model_id)
        if found is not None:
            return found
        for old in self.old_models:
            if model_id in (old.id, old.name):
                return self.find_model(old.transfer_to) or self.models[0]
        return self.models[0]


# -- the bundled default ---------------------------------------------------------------------

BUNDLED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def bundled_model(inference_url: str = DEFAULT_INFERENCE_URL) -> ModelSpec:
    """The model used when MODELS is unset: SmolLM2 135M on the local inference server."""
    return ModelSpec(
        id=BUNDLED_MODEL_ID,
        name=BUNDLED_MODEL_ID,
        display_name="SmolLM2 135M Instruct",
        description=(
            "A tiny instruction-tuned model from Hugging Face that answers quickly on any CPU. "
            "Good for short, simple tasks; expect mistakes on facts and reasoning."
        ),
        website_url="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
        logo_url=None,
        model_url="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
        preprompt="",
        parameters={
            "temperature": 0.3,
            "top_p": 0.9,
            "repetition_penalty": 1.1,
            "truncate": 3072,
            "max_new_tokens": 1024,
            "stop": ["<|im_end|>"],
        },
        prompt_examples=(
            ("Write an email", "Write a short email to my team saying the meeting moves to 3pm."),
            ("Explain a concept", "Explain what a hash table is in two sentences."),
            ("Brainstorm names", "Suggest five names for a bakery that sells sourdough bread."),
            ("Fix my grammar", "Fix the grammar: 'me and him goes to the store yesterday'."),
        ),
        endpoints=(Endpoint(type="tgi", url=_strip_slash(inference_url)),),
    )


# -- small readers -----------------------------------------------------------------------------


def _describe(value: Any) -> str:
    """How a wrong value is shown in a message: its JSON, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _strip_slash(url: str) -> str:
    return url.rstrip("/")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Fields:
    """Typed access to one JSON object, raising `ConfigError` that names the field."""

    def __init__(self, data: Mapping[str, Any], where: str, prefix: str = "") -> None:
        self.data = data
        self.where = where
        self.prefix = prefix

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(
            ERR_TYPE.format(
                where=self.where,
                field=self.prefix + key,
                expected=expected,
                got=_describe(self.data[key]),
            )
        )

    def required(self, key: str) -> ConfigError:
        return ConfigError(ERR_REQUIRED.format(where=self.where, field=self.prefix + key))

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.required(key)
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        if required and not value.strip():
            raise self.fail(key, "a non-empty string")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def integer(self, key: str, default: int | None, *, minimum: int) -> Any:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value) or value < minimum:
            raise self.fail(key, f"an integer >= {minimum}")
        return value

    def number(self, key: str, *, minimum: float | None = None) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        if not _is_number(value) or (minimum is not None and value < minimum):
            raise self.fail(key, "a number" if minimum is None else f"a number >= {minimum:g}")
        return value

    def strings(self, key: str) -> list[str] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return list(value)

    def obj(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "an object")
        return value

    def string_map(self, key: str) -> dict[str, str]:
        value = self.obj(key) or {}
        if not all(isinstance(v, str) for v in value.values()):
            raise self.fail(key, "an object of strings")
        return dict(value)


def _where(var: str, index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    label = name if isinstance(name, str) and name else None
    if label is None and isinstance(entry, dict) and isinstance(entry.get("id"), str):
        label = entry["id"]
    return f'{var}[{index}] ("{label}")' if label else f"{var}[{index}]"


def parse_json5(var: str, text: str) -> Any:
    """JSON5 text of one variable; syntax errors name the line and column."""
    try:
        return json5.loads(text)
    except ValueError as exc:
        message = str(exc)
        match = re.match(r"^<string>:(\d+) (.*) at column (\d+)$", message)
        if match:
            line, reason, column = match.groups()
            raise ConfigError(
                ERR_SYNTAX.format(var=var, line=line, column=column, reason=reason)
            ) from None
        raise ConfigError(ERR_SYNTAX_NO_POSITION.format(var=var, reason=message)) from None


def _parse_list(var: str, text: str) -> list[Any]:
    data = parse_json5(var, text)
    if not isinstance(data, list):
        raise ConfigError(ERR_NOT_A_LIST.format(var=var, got=_describe(data)))
    return data


# -- model entries -----------------------------------------------------------------------------


def _parse_parameters(fields: _Fields) -> dict[str, Any]:
    raw = fields.obj("parameters")
    if raw is None:
        return {}
    params = _Fields(raw, fields.where, "parameters.")
    result: dict[str, Any] = {}
    for key in _FLOAT_PARAMETERS:
        value = params.number(key, minimum=0)
        if value is not None:
            result[key] = value
    for key in _SIGNED_PARAMETERS:
        value = params.number(key)
        if value is not None:
            result[key] = value
    if raw.get("max_new_tokens") is None and raw.get("max_tokens") is not None:
        value = params.integer("max_tokens", None, minimum=1)
        result["max_new_tokens"] = value
    for key in _INT_PARAMETERS:
        value = params.integer(key, None, minimum=1)
        if value is not None:
            result[key] = value
    stop = params.strings("stop")
    if stop is not None:
        result["stop"] = stop
    known = {*_FLOAT_PARAMETERS, *_SIGNED_PARAMETERS, *_INT_PARAMETERS, "max_tokens", "stop"}
    for key, value in raw.items():  # chat-ui passes other parameters through
        if key not in known and value is not None:
            result[key] = value
    return result


def _parse_prompt_examples(fields: _Fields) -> tuple[tuple[str, str], ...]:
    raw = fields.data.get("promptExamples")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise fields.fail("promptExamples", "a list of {title, prompt} objects")
    examples = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigError(
                ERR_TYPE.format(
                    where=fields.where,
                    field=f"promptExamples[{i}]",
                    expected="an object with title and prompt",
                    got=_describe(item),
                )
            )
        example = _Fields(item, fields.where, f"promptExamples[{i}].")
        prompt = example.text("prompt", required=True)
        examples.append((example.text("title", prompt[:40]), prompt))
    return tuple(examples)


def _parse_endpoint(
    raw: Any, where: str, index: int, env: Mapping[str, str], inference_url: str
) -> Endpoint:
    prefix = f"endpoints[{index}]."
    if not isinstance(raw, dict):
        raise ConfigError(
            ERR_TYPE.format(
                where=where, field=f"endpoints[{index}]", expected="an object", got=_describe(raw)
            )
        )
    fields = _Fields(raw, where, prefix)
    kind = fields.text("type", "tgi")  # TGI's docs show endpoints without a type
    if kind not in ENDPOINT_TYPES:
        raise ConfigError(ERR_UNSUPPORTED_ENDPOINT.format(where=where, type=kind))
    weight = fields.integer("weight", 1, minimum=1)
    if kind == "tgi":
        url = _strip_slash(fields.text("url", required=True))
        stream_path = "/"
        if url.endswith("/generate_stream"):
            url, stream_path = url[: -len("/generate_stream")], "/generate_stream"
        authorization = fields.text("authorization")
        token = fields.text("accessToken")
        if authorization is None and token:
            authorization = f"Bearer {token}"
        return Endpoint(
            type="tgi",
            url=url,
            weight=weight,
            authorization=authorization,
            stream_path=stream_path,
        )
    base_url = fields.text("baseURL") or fields.text("url") or f"{inference_url}/v1"
    completion = fields.text("completion", "chat_completions")
    if completion not in COMPLETION_MODES:
        raise fields.fail("completion", "'chat_completions' or 'completions'")
    return Endpoint(
        type="openai",
        url=_strip_slash(base_url),
        weight=weight,
        api_key=fields.text("apiKey") or env.get("OPENAI_API_KEY") or None,
        completion=completion,
        default_headers=fields.string_map("defaultHeaders"),
        default_query=fields.string_map("defaultQuery"),
        extra_body=fields.obj("extraBody") or {},
        stream_path="",
    )


def parse_model(
    raw: Any,
    where: str,
    env: Mapping[str, str],
    *,
    inference_url: str = DEFAULT_INFERENCE_URL,
) -> ModelSpec:
    """One chat-ui model entry; ``where`` names it in error messages."""
    if not isinstance(raw, dict):
        raise ConfigError(ERR_NOT_AN_OBJECT.format(where=where, got=_describe(raw)))
    fields = _Fields(raw, where)
    unknown = sorted(set(raw) - _KNOWN_MODEL_KEYS)
    if unknown:
        logger.warning("%s: ignoring unknown keys %s", where, ", ".join(unknown))
    name = fields.text("name", required=True)
    model_id = fields.text("id") or name
    tokenizer = raw.get("tokenizer")
    if tokenizer is not None and not isinstance(tokenizer, str | dict):
        raise fields.fail("tokenizer", "a repo id or a directory")
    if isinstance(tokenizer, dict):  # chat-ui's {tokenizerUrl, tokenizerConfigUrl}: not fetched
        logger.warning("%s: tokenizer URLs are not fetched; using the default template", where)
        tokenizer = None
    endpoints_raw = raw.get("endpoints")
    if endpoints_raw is None:
        endpoints: tuple[Endpoint, ...] = (Endpoint(type="tgi", url=inference_url),)
    elif not isinstance(endpoints_raw, list) or not endpoints_raw:
        raise fields.fail("endpoints", "a non-empty list of endpoints")
    else:
        endpoints = tuple(
            _parse_endpoint(e, where, i, env, inference_url) for i, e in enumerate(endpoints_raw)
        )
    # Validate the fields only read by the pages too, so a typo fails at start-up.
    fields.text("datasetName")
    fields.text("datasetUrl")
    return ModelSpec(
        id=model_id,
        name=name,
        display_name=fields.text("displayName") or name,
        description=fields.text("description", ""),
        website_url=fields.text("websiteUrl"),
        logo_url=fields.text("logoUrl"),
        model_url=fields.text("modelUrl"),
        preprompt=fields.text("preprompt", ""),
        chat_prompt_template=fields.text("chatPromptTemplate"),
        tokenizer=tokenizer,
        system_role_supported=fields.flag("systemRoleSupported", True),
        parameters=_parse_parameters(fields),
        prompt_examples=_parse_prompt_examples(fields),
        unlisted=fields.flag("unlisted", False),
        multimodal=fields.flag("multimodal", False),
        multimodal_accepted_mimetypes=tuple(
            fields.strings("multimodalAcceptedMimetypes") or ("image/*",)
        ),
        tools=fields.flag("tools", False),
        endpoints=endpoints,
    )


def _parse_models(
    var: str, entries: list[Any], env: Mapping[str, str], url: str
) -> list[ModelSpec]:
    models = [
        parse_model(entry, _where(var, i, entry), env, inference_url=url)
        for i, entry in enumerate(entries)
    ]
    seen: set[str] = set()
    for i, model in enumerate(models):
        if model.id in seen:
            raise ConfigError(
                ERR_DUPLICATE_ID.format(where=_where(var, i, entries[i]), id=model.id)
            )
        seen.add(model.id)
    return models


# -- the newer OpenAI-only form ---------------------------------------------------------------


def _openai_models(
    env: Mapping[str, str], overrides: list[Any], url: str, list_models: ListModels | None
) -> list[ModelSpec]:
    base_url = _strip_slash(env["OPENAI_BASE_URL"])
    api_key = env.get("OPENAI_API_KEY") or None
    endpoint = {"type": "openai", "baseURL": base_url}
    if api_key:
        endpoint["apiKey"] = api_key
    ids = list_models(base_url, api_key) if list_models is not None else None
    if ids is None:
        logger.warning("OPENAI_BASE_URL is unreachable; using the MODELS entries as given")
        entries = [
            {"name": o.get("id"), **o, "endpoints": o.get("endpoints") or [endpoint]}
            if isinstance(o, dict)
            else o
            for o in overrides
        ]
        if not entries:  # the bundled model (one meaning everywhere), on that endpoint
            entry = {"name": BUNDLED_MODEL_ID, "endpoints": [endpoint]}
            served = parse_model(entry, "OPENAI_BASE_URL", env)
            return [replace(bundled_model(), endpoints=served.endpoints)]
        return _parse_models("MODELS", entries, env, url)

    by_key: dict[str, dict[str, Any]] = {}
    for i, override in enumerate(overrides):
        if not isinstance(override, dict):
            raise ConfigError(
                ERR_NOT_AN_OBJECT.format(
                    where=_where("MODELS", i, override), got=_describe(override)
                )
            )
        for key in ("id", "name"):
            if isinstance(override.get(key), str):
                by_key.setdefault(override[key], override)
    matched: set[int] = set()
    entries = []
    for model_id in ids:
        override = by_key.get(model_id, {})
        matched.add(id(override))
        entry = {k: v for k, v in override.items() if k not in ("id", "name")}
        entry.setdefault("endpoints", [endpoint])
        entries.append({"id": model_id, "name": model_id, **entry})
    for override in overrides:
        if id(override) not in matched:
            logger.warning(
                "MODELS entry %s matches no model at %s/models; ignored",
                override.get("id") or override.get("name"),
                base_url,
            )
    if not entries:
        raise ConfigError(f"{base_url}/models lists no models")
    return _parse_models("OPENAI_BASE_URL models", entries, env, url)


# -- the other variables ----------------------------------------------------------------------


def _int_var(env: Mapping[str, str], var: str) -> int | None:
    value = (env.get(var) or "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(ERR_BAD_INTEGER.format(var=var, value=value)) from None
    if number < 0:
        raise ConfigError(ERR_BAD_INTEGER.format(var=var, value=value))
    return number


def _bool_var(env: Mapping[str, str], var: str, default: bool) -> bool:
    value = (env.get(var) or "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(ERR_BAD_BOOLEAN.format(var=var, value=env[var]))


def _usage_limits(env: Mapping[str, str]) -> UsageLimits:
    text = (env.get("USAGE_LIMITS") or "").strip()
    if not text:
        return UsageLimits()
    raw = parse_json5("USAGE_LIMITS", text)
    if not isinstance(raw, dict):
        raise ConfigError(ERR_NOT_AN_OBJECT.format(where="USAGE_LIMITS", got=_describe(raw)))
    fields = _Fields(raw, "USAGE_LIMITS")
    return UsageLimits(
        conversations=fields.integer("conversations", None, minimum=0),
        messages=fields.integer("messages", None, minimum=0),
        message_length=fields.integer("messageLength", None, minimum=0),
        messages_per_minute=fields.integer("messagesPerMinute", None, minimum=0),
        concurrent_generations=fields.integer("concurrentGenerations", None, minimum=0),
    )


def _old_models(env: Mapping[str, str], models: list[ModelSpec]) -> tuple[OldModel, ...]:
    text = (env.get("OLD_MODELS") or "").strip()
    if not text:
        return ()
    result = []
    ids = {m.id for m in models} | {m.name for m in models}
    for i, raw in enumerate(_parse_list("OLD_MODELS", text)):
        where = _where("OLD_MODELS", i, raw)
        if not isinstance(raw, dict):
            raise ConfigError(ERR_NOT_AN_OBJECT.format(where=where, got=_describe(raw)))
        fields = _Fields(raw, where)
        name = fields.text("name", required=True)
        transfer_to = fields.text("transferTo")
        if transfer_to is not None and transfer_to not in ids:
            raise ConfigError(ERR_UNKNOWN_TRANSFER.format(where=where, target=transfer_to))
        result.append(
            OldModel(
                id=fields.text("id") or name,
                name=name,
                display_name=fields.text("displayName") or name,
                transfer_to=transfer_to,
            )
        )
    return tuple(result)


def _task_model(env: Mapping[str, str], models: list[ModelSpec], url: str) -> ModelSpec:
    value = (env.get("TASK_MODEL") or "").strip()
    if not value:
        return models[0]
    if value.startswith("{"):  # chat-ui also accepts a whole model entry
        return parse_model(parse_json5("TASK_MODEL", value), "TASK_MODEL", env, inference_url=url)
    for model in models:
        if value in (model.id, model.name):
            return model
    raise ConfigError(ERR_UNKNOWN_TASK_MODEL.format(name=value))


def load_app_config(env: Mapping[str, str], *, list_models: ListModels | None = None) -> AppConfig:
    """Build the configuration from a merged environment; raises `ConfigError`.

    `list_models(base_url, api_key)` lists the ids an ``OPENAI_BASE_URL`` serves (None: it
    could not be read, as when it is not given: the MODELS entries are taken as given)."""
    inference_url = _strip_slash((env.get("INFERENCE_URL") or "").strip() or DEFAULT_INFERENCE_URL)
    models_text = (env.get("MODELS") or "").strip()
    entries = _parse_list("MODELS", models_text) if models_text else []
    if (env.get("OPENAI_BASE_URL") or "").strip():
        models = _openai_models(env, entries, inference_url, list_models)
    elif models_text:
        if not entries:
            raise ConfigError(ERR_NO_MODELS)
        models = _parse_models("MODELS", entries, env, inference_url)
    else:
        models = [bundled_model(inference_url)]
    return AppConfig(
        models=tuple(models),
        task_model=_task_model(env, models, inference_url),
        app_name=env.get("PUBLIC_APP_NAME") or DEFAULT_APP_NAME,
        app_description=env.get("PUBLIC_APP_DESCRIPTION") or DEFAULT_APP_DESCRIPTION,
        disclaimer=env.get("PUBLIC_APP_DISCLAIMER_MESSAGE", DEFAULT_DISCLAIMER),
        llm_summarization=_bool_var(env, "LLM_SUMMARIZATION", True),
        old_models=_old_models(env, models),
        usage_limits=_usage_limits(env),
        messages_before_login=_int_var(env, "MESSAGES_BEFORE_LOGIN"),
    )
