"""Building the `AppConfig` from a merged environment (see `config.env.load_env`), in either of
chat-ui's forms:

- per model: ``MODELS`` lists models, each with ``tgi``/``openai`` endpoints (none: the local
  inference server at ``INFERENCE_URL``);
- the newer one: ``OPENAI_BASE_URL`` (+ ``OPENAI_API_KEY``) names one OpenAI-compatible server
  whose ``GET /models`` lists the models, and ``MODELS`` entries override them by id or name;

and the variables around MODELS. Must not import Django, `chatui.models` or `chatui.endpoints`
(whose `openai.list_models` and `openai.fetch_text` the caller passes in): it makes no HTTP
call of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from chatui.models_config import errors, spec
from chatui.models_config.errors import ConfigError, describe, entry_label, parse_json5
from chatui.models_config.spec import AppConfig, Endpoint, ModelSpec, OldModel, UsageLimits
from config.env import parse_bool

logger = logging.getLogger(__name__)

# The models a server lists: ids, or chat-ui model entries read from its /models metadata.
ListModels = Callable[[str, str | None], list[str] | list[dict[str, Any]] | None]
FetchText = Callable[[str], str | None]
# Keys chat-ui knows in a model entry; any other is probably a typo and is logged. Those
# not read: `providers` (the HF router's listing), `embeddingModel` and `isRouter` (features
# this app does not have).
MODEL_KEYS = frozenset(
    {field.alias or name for name, field in ModelSpec.model_fields.items()}
    | {"embeddingModel", "isRouter", "providers"}
)


def _var(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _validate(kind: type[Any], raw: Any, label: str, **context: Any) -> Any:
    """`raw`, the file's value, read as `kind` by chat-ui's key names (`context`: what
    `spec.Frozen.finish` needs); or the `ConfigError` that names `label` and the field."""
    try:
        return kind.model_validate(raw, context=context, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise errors.from_validation_error(exc, label) from None


def _parse_list(var: str, text: str) -> list[Any]:
    data = parse_json5(var, text)
    if not isinstance(data, list):
        raise ConfigError(errors.ERR_NOT_A_LIST.format(var=var, got=describe(data)))
    return data


def parse_model(
    raw: Any,
    where: str,
    env: Mapping[str, str],
    *,
    inference_url: str = spec.DEFAULT_INFERENCE_URL,
    fetch_text: FetchText | None = None,
) -> ModelSpec:
    """One chat-ui model entry; ``where`` names it in error messages. ``fetch_text(url)``
    reads a ``prepromptUrl`` (None: it could not be read, and ``preprompt`` stays)."""
    unknown = sorted(set(raw) - MODEL_KEYS) if isinstance(raw, dict) else []
    if unknown:
        logger.warning("%s: ignoring unknown keys %s", where, ", ".join(unknown))
    api_key = env.get("OPENAI_API_KEY") or None
    local_key = _var(env, "INFERENCE_API_KEY") or None
    model = _validate(
        ModelSpec, raw, where, inference_url=inference_url, api_key=api_key, local_key=local_key
    )
    if isinstance(raw.get("tokenizer"), dict):  # chat-ui's {tokenizerUrl, tokenizerConfigUrl}
        logger.warning("%s: tokenizer URLs are not fetched; using the default template", where)
    if model.preprompt_url:
        text = fetch_text(model.preprompt_url) if fetch_text is not None else None
        if text is None:
            logger.warning("%s: prepromptUrl could not be read; using preprompt", where)
        update = {"preprompt_url": None} | ({"preprompt": text} if text is not None else {})
        model = model.model_copy(update=update)
    return model


def _parse_models(
    var: str, entries: list[Any], env: Mapping[str, str], url: str, fetch_text: FetchText | None
) -> list[ModelSpec]:
    models = [
        parse_model(
            entry, entry_label(var, i, entry), env, inference_url=url, fetch_text=fetch_text
        )
        for i, entry in enumerate(entries)
    ]
    for i, model in enumerate(models):
        if model.id in (m.id for m in models[:i]):
            label = entry_label(var, i, entries[i])
            raise ConfigError(errors.ERR_DUPLICATE_ID.format(where=label, id=model.id))
    return models


# -- the newer OpenAI-only form ---------------------------------------------------------------


def _openai_models(
    env: Mapping[str, str],
    overrides: list[Any],
    url: str,
    list_models: ListModels | None,
    fetch_text: FetchText | None,
) -> list[ModelSpec]:
    base_url = env["OPENAI_BASE_URL"].rstrip("/")
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
            served = Endpoint(type="openai", url=base_url, api_key=api_key, stream_path="")
            return [spec.bundled_model().model_copy(update={"endpoints": (served,)})]
        return _parse_models("MODELS", entries, env, url, fetch_text)

    by_key: dict[str, dict[str, Any]] = {}
    for i, override in enumerate(overrides):
        if not isinstance(override, dict):
            label = entry_label("MODELS", i, override)
            raise ConfigError(errors.ERR_NOT_AN_OBJECT.format(where=label, got=describe(override)))
        for key in ("id", "name"):
            if isinstance(override.get(key), str):
                by_key.setdefault(override[key], override)
    matched: set[int] = set()
    entries = []
    for listed in ids:
        listing = {"id": listed} if isinstance(listed, str) else dict(listed)
        model_id = listing["id"]
        override = by_key.get(model_id, {})
        matched.add(id(override))
        entry = listing | {k: v for k, v in override.items() if k not in ("id", "name")}
        entry.setdefault("endpoints", [endpoint])
        entries.append({**entry, "id": model_id, "name": model_id})
    for override in overrides:
        if id(override) not in matched:
            logger.warning(
                "MODELS entry %s matches no model at %s/models; ignored",
                override.get("id") or override.get("name"),
                base_url,
            )
    if not entries:
        raise ConfigError(f"{base_url}/models lists no models")
    return _parse_models("OPENAI_BASE_URL models", entries, env, url, fetch_text)


# -- the other variables ----------------------------------------------------------------------


def _int_var(env: Mapping[str, str], var: str) -> int | None:
    value = _var(env, var)
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(errors.ERR_BAD_INTEGER.format(var=var, value=value))
    return number


def _bool_var(env: Mapping[str, str], var: str, default: bool) -> bool:
    try:
        return parse_bool(env.get(var), default, name=var)
    except ValueError:
        raise ConfigError(errors.ERR_BAD_BOOLEAN.format(var=var, value=env[var])) from None


def _usage_limits(env: Mapping[str, str]) -> UsageLimits:
    if not (text := _var(env, "USAGE_LIMITS")):
        return UsageLimits()
    return _validate(UsageLimits, parse_json5("USAGE_LIMITS", text), "USAGE_LIMITS")


def _old_models(env: Mapping[str, str], models: list[ModelSpec]) -> tuple[OldModel, ...]:
    text = _var(env, "OLD_MODELS")
    result = []
    ids = {m.id for m in models} | {m.name for m in models}
    for i, raw in enumerate(_parse_list("OLD_MODELS", text) if text else []):
        label = entry_label("OLD_MODELS", i, raw)
        old = _validate(OldModel, raw, label)
        if old.transfer_to is not None and old.transfer_to not in ids:
            message = errors.ERR_UNKNOWN_TRANSFER.format(where=label, target=old.transfer_to)
            raise ConfigError(message)
        result.append(old)
    return tuple(result)


def _task_model(env: Mapping[str, str], models: list[ModelSpec], url: str) -> ModelSpec:
    value = _var(env, "TASK_MODEL")
    if not value:
        return models[0]
    if value.startswith("{"):  # chat-ui also accepts a whole model entry
        return parse_model(parse_json5("TASK_MODEL", value), "TASK_MODEL", env, inference_url=url)
    for model in models:
        if value in (model.id, model.name):
            return model
    raise ConfigError(errors.ERR_UNKNOWN_TASK_MODEL.format(name=value))


def load_app_config(
    env: Mapping[str, str],
    *,
    list_models: ListModels | None = None,
    fetch_text: FetchText | None = None,
) -> AppConfig:
    """Build the configuration from a merged environment; raises `ConfigError`.

    `list_models(base_url, api_key)` lists the models an ``OPENAI_BASE_URL`` serves, as ids or
    as entries its ``/models`` metadata fills (None: it could not be read, as when it is not
    given: the MODELS entries are taken as given). `fetch_text(url)` reads ``prepromptUrl``s."""
    inference_url = (_var(env, "INFERENCE_URL") or spec.DEFAULT_INFERENCE_URL).rstrip("/")
    models_text = _var(env, "MODELS")
    entries = _parse_list("MODELS", models_text) if models_text else []
    if _var(env, "OPENAI_BASE_URL"):
        models = _openai_models(env, entries, inference_url, list_models, fetch_text)
    elif models_text:
        if not entries:
            raise ConfigError(errors.ERR_NO_MODELS)
        models = _parse_models("MODELS", entries, env, inference_url, fetch_text)
    else:
        models = [spec.bundled_model(inference_url, _var(env, "INFERENCE_API_KEY") or None)]
    return AppConfig(
        models=tuple(models),
        task_model=_task_model(env, models, inference_url),
        app_name=env.get("PUBLIC_APP_NAME") or spec.DEFAULT_APP_NAME,
        app_description=env.get("PUBLIC_APP_DESCRIPTION") or spec.DEFAULT_APP_DESCRIPTION,
        disclaimer=env.get("PUBLIC_APP_DISCLAIMER_MESSAGE", spec.DEFAULT_DISCLAIMER),
        llm_summarization=_bool_var(env, "LLM_SUMMARIZATION", True),
        old_models=_old_models(env, models),
        usage_limits=_usage_limits(env),
        messages_before_login=_int_var(env, "MESSAGES_BEFORE_LOGIN"),
    )
