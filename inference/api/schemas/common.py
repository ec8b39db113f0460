"""The wire types every API family shares: the two model bases, the request integer, TGI's
grammars (also accepted as OpenAI's `response_format`) and the error body.

`StrictBody` reads requests as TGI's serde does; `OmitEmpty` drops empty keys from answers.
Types only: no validation rules beyond JSON shape (those live in `inference.api.validation`).
Must not import the engine, torch or any route.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_serializer


class OmitEmpty(BaseModel):
    """A response model that drops some keys when empty, as TGI's `skip_serializing_if` does."""

    model_config = ConfigDict(populate_by_name=True)
    omit_if_empty: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler):
        data = handler(self)
        for key in self.omit_if_empty:
            if data.get(key) in (None, [], {}):
                data.pop(key, None)
        return data


def _integral(value: Any) -> Any:
    """JSON Schema counts `2.0` as an integer, so the document's `integer` accepts it too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A request integer: a JSON integer, or a number with no fractional part; never a string.
Integer = Annotated[int, BeforeValidator(_integral)]


# An extension of this server (vLLM's name; neither TGI nor OpenAI has it), so that a benchmark
# can ask every request for a fixed token count.
IGNORE_EOS = (
    "Keep generating past the end-of-sequence token, up to the token limit or a stop "
    "sequence (an extension: vLLM's name)."
)


class StrictBody(BaseModel):
    """A request model read as TGI's serde reads JSON: no coercion (`0` is not `false`, `"1.5"`
    is not a number) and no NaN or infinity, so the OpenAPI document's types are the truth."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class JsonSchemaConfig(StrictBody):
    """A named JSON Schema: TGI's `json_schema` grammar value and OpenAI's `json_schema`."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, populate_by_name=True)

    name: str | None = Field(default=None, description="Optional name identifier for the schema")
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON Schema itself")
    strict: bool | None = Field(default=None, description="Accepted; output always follows it")


class GrammarJson(StrictBody):
    type: Literal["json"]
    value: dict[str, Any] | str = Field(
        description="A JSON Schema (an object, or its JSON text) the output must follow."
    )


class GrammarRegex(StrictBody):
    type: Literal["regex"]
    value: str = Field(description="A regular expression the whole output must match.")


class GrammarJsonSchema(StrictBody):
    type: Literal["json_schema"]
    value: JsonSchemaConfig


# TGI's GrammarType: `{"type": "json" | "regex" | "json_schema", "value": ...}`.
GrammarType = Annotated[GrammarJson | GrammarRegex | GrammarJsonSchema, Field(discriminator="type")]


class ErrorResponse(BaseModel):
    error: str
    error_type: str
