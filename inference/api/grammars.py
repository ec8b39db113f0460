"""The wire's grammar forms as the engine's `GrammarSpec`: TGI's `grammar` / `response_format`
(`json`, `regex`, `json_schema`) and OpenAI's `response_format` (`json_schema`, `json_object`,
`text`).

Only shapes are read here; whether the engine can follow a grammar is found out by compiling
it (`Validator.validate`), which turns `GrammarError` into a 422 with its reason.
Must not import torch or the web framework.
"""

from __future__ import annotations

from typing import Any

from inference.api.errors import ValidationFailed
from inference.api.schemas import (
    GrammarJson,
    GrammarJsonSchema,
    GrammarRegex,
    ResponseFormatJsonObject,
    ResponseFormatJsonSchema,
    ResponseFormatText,
)
from inference.types import GrammarError, GrammarSpec, json_grammar, regex_grammar

JSON_OBJECT_SCHEMA = {"type": "object"}
GRAMMAR_UNAVAILABLE = "grammar is not supported by this engine"


def response_format_grammar(fmt: Any) -> GrammarJson | GrammarRegex | GrammarJsonSchema | None:
    """A chat `response_format` as the `grammar` of TGI's parameters (None: unconstrained)."""
    if fmt is None or isinstance(fmt, ResponseFormatText):
        return None
    if isinstance(fmt, ResponseFormatJsonSchema):
        return GrammarJson(type="json", value=fmt.json_schema.schema_)
    if isinstance(fmt, ResponseFormatJsonObject):
        return GrammarJson(type="json", value=JSON_OBJECT_SCHEMA)
    return fmt


def grammar_spec(grammar: Any) -> GrammarSpec | None:
    """The engine's spec for a wire grammar (None: no constraint); 422 on a malformed schema."""
    try:
        if grammar is None or isinstance(grammar, ResponseFormatText):
            return None
        if isinstance(grammar, GrammarJson):
            return json_grammar(grammar.value)
        if isinstance(grammar, GrammarRegex):
            return regex_grammar(grammar.value)
        if isinstance(grammar, GrammarJsonSchema):
            return json_grammar(grammar.value.schema_)
        if isinstance(grammar, ResponseFormatJsonSchema):
            return json_grammar(grammar.json_schema.schema_)
        if isinstance(grammar, ResponseFormatJsonObject):
            return json_grammar(JSON_OBJECT_SCHEMA)
    except GrammarError as exc:
        raise ValidationFailed(str(exc)) from exc
    raise ValidationFailed(f"unknown grammar type {type(grammar).__name__}")
