"""What a bad configuration says: `ConfigError`, its messages (tests import them), JSON5 syntax
errors with line and column, and the wording of a pydantic `ValidationError` in the file's terms.

`spec`'s value types word pydantic's errors through `expect`, its entry checks raise `expected`,
so every failure reads ``MODELS[1] ("name"): "field" must be ..., got ...``.

Must not import Django, `chatui.models` or `chatui.endpoints`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import json5
from pydantic import ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

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


class ConfigError(Exception):
    """The configuration is invalid; the message says where and why, in the file's terms."""


def describe(value: Any) -> str:
    """How a wrong value is shown in a message: its JSON, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def entry_label(var: str, index: int, entry: Any) -> str:
    """How an entry of a list variable is named: ``MODELS[1] ("name or id")``."""
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


# -- the wording of pydantic's errors ---------------------------------------------------------


def expected(what: str, *, field: str | None = None, got: Any = None) -> PydanticCustomError:
    """The value is not `what` ("a string", "an integer >= 1"); `field` and `got` name it when
    a check of the whole entry raises this for one of its fields."""
    context = {"expected": what} | ({"field": field, "got": got} if field else {})
    return PydanticCustomError("expected", "must be {expected}", context)


def expect(what: str, **instead: str) -> WrapValidator:
    """Pydantic's own error for a value of this type, worded "must be <what>", or as `instead`
    says for that error's type (``string_type="a string"``)."""

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            raise expected(instead.get(exc.errors()[0]["type"], what)) from None

    return WrapValidator(check)


def from_validation_error(exc: ValidationError, where: str) -> ConfigError:
    """The first error of a validation (`expected`, `missing` or the custom ``required`` and
    ``unsupported_endpoint``), worded as the file would say it."""
    error = exc.errors(include_url=False)[0]
    context = error.get("ctx") or {}
    field = ""  # ('endpoints', 0, 'weight') -> 'endpoints[0].weight'
    for part in (*error["loc"], *([context["field"]] if "field" in context else [])):
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    got = describe(context.get("got", error["input"]))
    if error["type"] == "unsupported_endpoint":
        return ConfigError(ERR_UNSUPPORTED_ENDPOINT.format(where=where, type=context["type"]))
    if error["type"] in ("missing", "required"):
        return ConfigError(ERR_REQUIRED.format(where=where, field=field))
    if error["type"] == "expected" and not field:  # the entry itself
        return ConfigError(ERR_NOT_AN_OBJECT.format(where=where, got=got))
    if error["type"] == "expected":
        return ConfigError(
            ERR_TYPE.format(where=where, field=field, expected=context["expected"], got=got)
        )
    return ConfigError(f'{where}: "{field}": {error["msg"]}')
