"""The value types of chat-ui's configuration file and the frozen base of every configuration
type (`spec`): how each value is checked as JSON gives it, and worded when it is refused.

Must not import Django, `chatui.models` or `chatui.endpoints`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from annotated_types import Ge
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.types import StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic_core.core_schema import ValidationInfo, ValidatorFunctionWrapHandler

from chatui.models_config.errors import expect, expected


def _whole(value: Any) -> Any:
    """JSON5's ``2.0`` is the integer 2."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Text = Annotated[StrictStr, expect("a string")]
NonEmptyText = Annotated[
    StrictStr, Field(pattern=r"\S"), expect("a non-empty string", string_type="a string")
]
Flag = Annotated[StrictBool, expect("true or false")]
Count = Annotated[StrictInt, Ge(0), BeforeValidator(_whole), expect("an integer >= 0")]
PositiveInt = Annotated[StrictInt, Ge(1), BeforeValidator(_whole), expect("an integer >= 1")]
Number = Annotated[StrictInt | StrictFloat, expect("a number")]
NonNegative = Annotated[StrictInt | StrictFloat, Ge(0), expect("a number >= 0")]
JsonObject = Annotated[dict[str, Any], expect("an object")]
StringMap = Annotated[dict[str, StrictStr], expect("an object of strings", dict_type="an object")]
Strings = Annotated[list[StrictStr], expect("a list of strings")]
StringTuple = Annotated[tuple[StrictStr, ...], expect("a list of strings")]
Tokenizer = Annotated[StrictStr | dict[str, Any], expect("a repo id or a directory")]
Completion = Annotated[
    StrictStr,
    Field(pattern=r"^(chat_completions|completions)$"),
    expect("'chat_completions' or 'completions'", string_type="a string"),
]


class Frozen(BaseModel):
    """An immutable configuration type; `what` is how a non-object in the file is refused."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, validate_by_name=True, protected_namespaces=()
    )
    what: ClassVar[str] = "an object"

    @model_validator(mode="wrap")
    @classmethod
    def _from_file(cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo):
        if info.context is None or isinstance(data, cls):  # built by the app
            return handler(data)
        if not isinstance(data, dict):
            raise expected(cls.what)
        data = cls.prepare({key: value for key, value in data.items() if value is not None})
        return handler(data).finish(info.context)

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The file's object before its fields are read: chat-ui's variants reshaped; an unset
        or empty id or display name takes the entry's name."""
        for key in ("id", "displayName"):
            if data.get(key, "") == "" and "name" in data:
                data[key] = data["name"]
        return data

    def finish(self, context: dict[str, Any]) -> Self:
        """The entry as the app uses it, from the file's fields (all valid by now)."""
        return self

    def __hash__(self) -> int:  # NOTE: dict fields (parameters, headers) are not hashed
        return hash(tuple(v for v in self.__dict__.values() if not isinstance(v, dict)))


def _in_file(read: Any) -> Any:
    """A field validator that runs only on the file's value (`read(value, context)`)."""
    return BeforeValidator(lambda v, info: v if info.context is None else read(v, info.context))
