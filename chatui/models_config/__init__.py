"""The chat configuration: chat-ui's `MODELS` (JSON5) and the variables around it, validated.

`load_app_config(env)` reads a merged environment mapping (see `config.env.load_env`) and
returns an immutable `AppConfig`; a bad file raises `ConfigError`, whose message names the
entry (index and name) and the field, or the line and column of a JSON5 syntax error.
`spec` holds the types (frozen pydantic models that read chat-ui's file by its own key names),
`errors` the messages, `load` the two forms of MODELS and the other variables.

Must not import Django, `chatui.models` or `chatui.endpoints`: it makes no HTTP call of its own.
"""

from __future__ import annotations

from chatui.models_config.errors import (
    ERR_BAD_BOOLEAN,
    ERR_BAD_INTEGER,
    ERR_DUPLICATE_ID,
    ERR_NO_MODELS,
    ERR_NOT_A_LIST,
    ERR_NOT_AN_OBJECT,
    ERR_REQUIRED,
    ERR_SYNTAX,
    ERR_SYNTAX_NO_POSITION,
    ERR_TYPE,
    ERR_UNKNOWN_TASK_MODEL,
    ERR_UNKNOWN_TRANSFER,
    ERR_UNSUPPORTED_ENDPOINT,
    ConfigError,
    parse_json5,
)
from chatui.models_config.load import ListModels, load_app_config, parse_model
from chatui.models_config.spec import (
    BUNDLED_MODEL_ID,
    COMPLETION_MODES,
    DEFAULT_APP_DESCRIPTION,
    DEFAULT_APP_NAME,
    DEFAULT_DISCLAIMER,
    DEFAULT_INFERENCE_URL,
    ENDPOINT_TYPES,
    AppConfig,
    Endpoint,
    ModelSpec,
    OldModel,
    UsageLimits,
    bundled_model,
)

__all__ = [
    "BUNDLED_MODEL_ID",
    "COMPLETION_MODES",
    "DEFAULT_APP_DESCRIPTION",
    "DEFAULT_APP_NAME",
    "DEFAULT_DISCLAIMER",
    "DEFAULT_INFERENCE_URL",
    "ENDPOINT_TYPES",
    "ERR_BAD_BOOLEAN",
    "ERR_BAD_INTEGER",
    "ERR_DUPLICATE_ID",
    "ERR_NOT_AN_OBJECT",
    "ERR_NOT_A_LIST",
    "ERR_NO_MODELS",
    "ERR_REQUIRED",
    "ERR_SYNTAX",
    "ERR_SYNTAX_NO_POSITION",
    "ERR_TYPE",
    "ERR_UNKNOWN_TASK_MODEL",
    "ERR_UNKNOWN_TRANSFER",
    "ERR_UNSUPPORTED_ENDPOINT",
    "AppConfig",
    "ConfigError",
    "Endpoint",
    "ListModels",
    "ModelSpec",
    "OldModel",
    "UsageLimits",
    "bundled_model",
    "load_app_config",
    "parse_json5",
    "parse_model",
]
