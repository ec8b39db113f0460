"""What chat-ui's `.env.local` may say, as pydantic models: a MODELS entry with its endpoints,
parameters and prompt examples, an OLD_MODELS entry and USAGE_LIMITS; each turns itself into
the app's type (`spec`).

Field aliases are chat-ui's names, so an error's location is the file's own path
(``endpoints[0].weight``). Values are checked as JSON gives them (no "2" for 2, no 1 for true)
by the small annotated types below, whose errors say what was expected; a key set to null counts
as absent, as in chat-ui. `errors.from_validation_error` words the first error.

Must not import Django, `chatui.models` or `chatui.endpoints`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, model_validator
from pydantic.alias_generators import to_camel

from chatui.models_config.errors import expected, required, unsupported_endpoint
from chatui.models_config.spec import Endpoint, ModelSpec, OldModel, UsageLimits

ENDPOINT_TYPES = ("tgi", "openai")
COMPLETION_MODES = ("chat_completions", "completions")
TGI_STREAM_PATH = "/generate_stream"

# -- values ------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check(*rules: tuple[str, Callable[[Any], bool]]) -> PlainValidator:
    """A validator that passes a value meeting every rule, else says what the first rule it
    fails expected (``("a string", is_str), ("a non-empty string", str.strip)``)."""

    def check(value: Any) -> Any:
        for what, is_valid in rules:
            if not is_valid(value):
                raise expected(what)
        return value

    return PlainValidator(check)


def _integer(minimum: int) -> PlainValidator:
    """Integers >= `minimum`; a float with no fraction (JSON5 `2.0`) is taken as the integer."""

    def check(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value) or value < minimum:
            raise expected(f"an integer >= {minimum}")
        return value

    return PlainValidator(check)


def _list_of(what: str, *, non_empty: bool = False) -> BeforeValidator:
    """Checks that a list field is a list (before its items are validated)."""

    def check(value: Any) -> Any:
        if not isinstance(value, list) or (non_empty and not value):
            raise expected(what)
        return value

    return BeforeValidator(check)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _has_string_values(value: dict[str, Any]) -> bool:
    return all(isinstance(v, str) for v in value.values())


A_STRING = ("a string", _is_str)
Text = Annotated[str, _check(A_STRING)]
NonEmptyText = Annotated[str, _check(A_STRING, ("a non-empty string", lambda v: v.strip()))]
Flag = Annotated[bool, _check(("true or false", lambda v: isinstance(v, bool)))]
Count = Annotated[int, _integer(0)]
PositiveInt = Annotated[int, _integer(1)]
Number = Annotated[float, _check(("a number", _is_number))]
NonNegative = Annotated[float, _check(("a number >= 0", lambda v: _is_number(v) and v >= 0))]
Strings = Annotated[
    list[str],
    _check(("a list of strings", lambda v: isinstance(v, list) and all(map(_is_str, v)))),
]
JsonObject = Annotated[dict[str, Any], _check(("an object", _is_dict))]
StringMap = Annotated[
    dict[str, str],
    _check(("an object", _is_dict), ("an object of strings", _has_string_values)),
]
Completion = Annotated[
    str, _check(A_STRING, ("'chat_completions' or 'completions'", COMPLETION_MODES.__contains__))
]
Tokenizer = Annotated[
    str | dict[str, Any], _check(("a repo id or a directory", lambda v: isinstance(v, str | dict)))
]


# -- entries -----------------------------------------------------------------------------------


class Entry(BaseModel):
    """One JSON object of the file; `what` is how a value that is not an object is refused."""

    model_config = ConfigDict(alias_generator=to_camel, protected_namespaces=())
    what: ClassVar[str] = "an object"

    @model_validator(mode="before")
    @classmethod
    def _an_object_without_nulls(cls, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise expected(cls.what)
        return cls.prepare({key: value for key, value in data.items() if value is not None})

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The object before its fields are read (subclasses reshape chat-ui's variants)."""
        return data


class Parameters(Entry):
    """Generation parameters; those not named here pass through to the server unchecked."""

    model_config = ConfigDict(alias_generator=None, extra="allow")

    temperature: NonNegative | None = None
    top_p: NonNegative | None = None
    repetition_penalty: NonNegative | None = None
    presence_penalty: Number | None = None
    frequency_penalty: Number | None = None
    max_tokens: PositiveInt | None = None  # newer files' name for max_new_tokens
    top_k: PositiveInt | None = None
    truncate: PositiveInt | None = None
    max_new_tokens: PositiveInt | None = None
    stop: Strings | None = None

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "max_new_tokens" in data:  # max_tokens is only its fallback: not read at all
            data.pop("max_tokens", None)
        return data

    def to_dict(self) -> dict[str, Any]:
        """The parameters as set, ``max_tokens`` under its older name (extras last)."""
        values = self.model_dump(exclude_none=True)
        return {("max_new_tokens" if k == "max_tokens" else k): v for k, v in values.items()}


class PromptExample(Entry):
    what: ClassVar[str] = "an object with title and prompt"

    prompt: NonEmptyText
    title: Text | None = None


class EndpointEntry(Entry):
    """A ``tgi`` (the default type, as in TGI's docs) or ``openai`` endpoint; keys of the other
    type are ignored, as chat-ui does."""

    KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "tgi": ("type", "weight", "url", "authorization", "accessToken"),
        "openai": (
            *("type", "weight", "baseURL", "url", "completion", "apiKey"),
            *("defaultHeaders", "defaultQuery", "extraBody"),
        ),
    }

    type: Text = "tgi"
    weight: PositiveInt = 1
    base_url: Text | None = Field(None, alias="baseURL")
    url: Text | None = None
    authorization: Text | None = None  # tgi: the whole header value
    access_token: Text | None = None  # tgi: sent as "Bearer <token>"
    completion: Completion = "chat_completions"
    api_key: Text | None = None
    default_headers: StringMap = Field(default_factory=dict)
    default_query: StringMap = Field(default_factory=dict)
    extra_body: JsonObject = Field(default_factory=dict)

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        kind = data.get("type", "tgi")
        if not isinstance(kind, str):
            return data  # the field says it must be a string
        if kind not in ENDPOINT_TYPES:
            raise unsupported_endpoint(kind)
        return {key: value for key, value in data.items() if key in cls.KEYS[kind]}

    @model_validator(mode="after")
    def _tgi_needs_a_url(self) -> EndpointEntry:
        if self.type == "tgi" and self.url is None:
            raise required("url")
        if self.type == "tgi" and not self.url.strip():
            raise expected("a non-empty string", field="url", got=self.url)
        return self

    def to_spec(self, *, inference_url: str, api_key: str | None) -> Endpoint:
        """The endpoint; an openai one without a URL is the local server's `/v1`, without a
        key it takes `api_key` (OPENAI_API_KEY)."""
        if self.type == "tgi":
            url, stream_path = self.url.rstrip("/"), "/"
            if url.endswith(TGI_STREAM_PATH):
                url, stream_path = url.removesuffix(TGI_STREAM_PATH), TGI_STREAM_PATH
            authorization = self.authorization
            if authorization is None and self.access_token:
                authorization = f"Bearer {self.access_token}"
            return Endpoint(
                type="tgi",
                url=url,
                weight=self.weight,
                authorization=authorization,
                stream_path=stream_path,
            )
        return Endpoint(
            type="openai",
            url=(self.base_url or self.url or f"{inference_url}/v1").rstrip("/"),
            weight=self.weight,
            api_key=self.api_key or api_key or None,
            completion=self.completion,  # type: ignore[arg-type]
            default_headers=self.default_headers,
            default_query=self.default_query,
            extra_body=self.extra_body,
            stream_path="",
        )


class ModelEntry(Entry):
    """One model of MODELS (or TASK_MODEL's whole entry). Fields are read in chat-ui's order of
    importance, so the first error reported is the one to fix first."""

    name: NonEmptyText
    id: Text | None = None
    tokenizer: Tokenizer | None = None  # an object ({tokenizerUrl, ...}) is not fetched
    endpoints: (
        Annotated[list[EndpointEntry], _list_of("a non-empty list of endpoints", non_empty=True)]
        | None
    ) = None
    # Read only by the pages, but checked so that a typo fails at start-up.
    dataset_name: Text | None = None
    dataset_url: Text | None = None
    display_name: Text | None = None
    description: Text = ""
    website_url: Text | None = None
    logo_url: Text | None = None
    model_url: Text | None = None
    preprompt: Text = ""
    chat_prompt_template: Text | None = None
    system_role_supported: Flag = True
    parameters: Parameters | None = None
    prompt_examples: Annotated[
        list[PromptExample], _list_of("a list of {title, prompt} objects")
    ] = Field(default_factory=list)
    unlisted: Flag = False
    multimodal: Flag = False
    multimodal_accepted_mimetypes: Strings | None = None
    tools: Flag = False

    def to_spec(self, *, inference_url: str, api_key: str | None) -> ModelSpec:
        """The model; with no endpoints it runs on the local server at `inference_url`."""
        if self.endpoints is None:
            endpoints: tuple[Endpoint, ...] = (Endpoint(type="tgi", url=inference_url),)
        else:
            endpoints = tuple(
                e.to_spec(inference_url=inference_url, api_key=api_key) for e in self.endpoints
            )
        return ModelSpec(
            id=self.id or self.name,
            name=self.name,
            display_name=self.display_name or self.name,
            description=self.description,
            website_url=self.website_url,
            logo_url=self.logo_url,
            model_url=self.model_url,
            preprompt=self.preprompt,
            chat_prompt_template=self.chat_prompt_template,
            tokenizer=self.tokenizer if isinstance(self.tokenizer, str) else None,
            system_role_supported=self.system_role_supported,
            parameters=self.parameters.to_dict() if self.parameters else {},
            prompt_examples=tuple(
                (e.prompt[:40] if e.title is None else e.title, e.prompt)
                for e in self.prompt_examples
            ),
            unlisted=self.unlisted,
            multimodal=self.multimodal,
            multimodal_accepted_mimetypes=tuple(self.multimodal_accepted_mimetypes or ("image/*",)),
            tools=self.tools,
            endpoints=endpoints,
        )


# Keys chat-ui knows in a model entry; any other is probably a typo and is logged.
MODEL_KEYS = frozenset(
    {f.alias or name for name, f in ModelEntry.model_fields.items()}
    | {"reasoning", "embeddingModel", "isRouter"}
)


class OldModelEntry(Entry):
    """A retired model of OLD_MODELS (`load` checks that ``transferTo`` names a model)."""

    name: NonEmptyText
    transfer_to: Text | None = None
    id: Text | None = None
    display_name: Text | None = None

    def to_spec(self) -> OldModel:
        return OldModel(
            id=self.id or self.name,
            name=self.name,
            display_name=self.display_name or self.name,
            transfer_to=self.transfer_to,
        )


class UsageLimitsEntry(Entry):
    """USAGE_LIMITS; an unset limit stays None (0 means no limit)."""

    conversations: Count | None = None
    messages: Count | None = None
    message_length: Count | None = None
    messages_per_minute: Count | None = None
    concurrent_generations: Count | None = None

    def to_spec(self) -> UsageLimits:
        return UsageLimits(**self.model_dump())
