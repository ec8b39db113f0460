"""The chat configuration's types: endpoints, models, retired models, usage limits and the whole
`AppConfig`, plus the bundled default model.

Frozen pydantic models, each field declared once. The app builds them by field name
(``ModelSpec(display_name=...)``, ``model_copy(update=...)``); `load` validates chat-ui's file
into the same types by chat-ui's key names (the aliases), with a context (the local server's
URL, OPENAI_API_KEY) that turns on what only the file needs: a null counts as absent, the id
and display name follow the name, endpoints take chat-ui's shapes. Values are checked as JSON
gives them (no "2" for 2, no 1 for true), worded by `errors.expect`.

Must not import Django, `chatui.models` or `chatui.endpoints`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, TypeAdapter
from pydantic_core import PydanticCustomError

from chatui.models_config.errors import expect, expected
from chatui.models_config.fields import (
    Completion,
    Count,
    Flag,
    Frozen,
    JsonObject,
    NonEmptyText,
    NonNegative,
    Number,
    PositiveInt,
    StringMap,
    Strings,
    StringTuple,
    Text,
    Tokenizer,
    _in_file,
)

DEFAULT_INFERENCE_URL = "http://127.0.0.1:8080"
DEFAULT_APP_NAME = "ChatUI"
DEFAULT_APP_DESCRIPTION = "Chat with open models running on your own server."
DEFAULT_DISCLAIMER = "Generated content may be inaccurate or false."
ENDPOINT_TYPES = ("tgi", "openai")
COMPLETION_MODES = ("chat_completions", "completions")
TGI_STREAM_PATH = "/generate_stream"


class Endpoint(Frozen):
    """Where one model's answers come from.

    ``url`` is the TGI server root (a ``/generate_stream`` suffix stripped, remembered in
    ``stream_path``) or, for ``openai``, the base URL ending in ``/v1``. What is sent where is
    `chatui.endpoints`' business. In the file, ``type`` defaults to ``tgi`` (as in TGI's docs)
    and keys of the other type are ignored, as chat-ui does.
    """

    KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "tgi": ("type", "weight", "url", "authorization", "accessToken"),
        "openai": (
            *("type", "weight", "baseURL", "url", "completion", "apiKey"),
            *("defaultHeaders", "defaultQuery", "extraBody"),
        ),
    }

    type: Annotated[Literal["tgi", "openai"], expect("a string")] = "tgi"
    weight: PositiveInt = 1
    base_url: Text | None = Field(None, alias="baseURL", exclude=True, repr=False)  # file only
    url: Text = ""
    authorization: Text | None = None  # tgi: the whole header value
    access_token: Text | None = Field(None, exclude=True, repr=False)  # file only: "Bearer <it>"
    completion: Completion = "chat_completions"
    api_key: Text | None = None  # openai: sent as "Bearer <key>"
    default_headers: StringMap = Field(default_factory=dict)
    default_query: StringMap = Field(default_factory=dict)
    extra_body: JsonObject = Field(default_factory=dict)
    # tgi: "/" (chat-ui posts to the root) or "/generate_stream"; openai: "" (the route
    # follows `completion`, see chatui.endpoints.openai)
    stream_path: str = "/"

    @property
    def key(self) -> str:
        """Identifies the endpoint in the health registry and the template cache."""
        return f"{self.type}:{self.url}{self.stream_path}"

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        kind = data.get("type", "tgi")
        if not isinstance(kind, str):
            return data  # the field says it must be a string
        if kind not in ENDPOINT_TYPES:
            raise PydanticCustomError("unsupported_endpoint", "unsupported", {"type": kind})
        return {key: value for key, value in data.items() if key in cls.KEYS[kind]}

    def finish(self, context: dict[str, Any]) -> Endpoint:
        """An openai endpoint without a URL is the local server's `/v1`; without a key it
        takes OPENAI_API_KEY. A tgi one needs a URL. An endpoint on the local server
        (``INFERENCE_URL``) with no credentials of its own sends that server's key."""
        local = context["inference_url"]
        local_key = context.get("local_key")
        if self.type == "openai":
            url = (self.base_url or self.url or f"{local}/v1").rstrip("/")
            api_key = self.api_key or context["api_key"]
            if api_key is None and url == f"{local}/v1":
                api_key = local_key
            update = {"url": url.rstrip("/"), "api_key": api_key, "stream_path": ""}
            return self.model_copy(update=update | {"base_url": None})
        if "url" not in self.model_fields_set:
            raise PydanticCustomError("required", "url is required", {"field": "url"})
        if not self.url.strip():
            raise expected("a non-empty string", field="url", got=self.url)
        url, stream_path = self.url.rstrip("/"), "/"
        if url.endswith(TGI_STREAM_PATH):
            url, stream_path = url.removesuffix(TGI_STREAM_PATH), TGI_STREAM_PATH
        authorization = self.authorization
        if authorization is None and self.access_token:
            authorization = f"Bearer {self.access_token}"
        if authorization is None and local_key and url == local:
            authorization = f"Bearer {local_key}"
        update = {"url": url, "stream_path": stream_path, "authorization": authorization}
        return self.model_copy(update=update | {"access_token": None})


class Parameters(Frozen):
    """A model's generation parameters in the file; those not named here pass through to the
    server unchecked."""

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

    @staticmethod
    def read(value: Any, context: dict[str, Any]) -> dict[str, Any]:
        """The parameters as set, ``max_tokens`` under its older name (extras last)."""
        values = Parameters.model_validate(value, context=context).model_dump(exclude_none=True)
        return {("max_new_tokens" if k == "max_tokens" else k): v for k, v in values.items()}


class PromptExample(Frozen):
    """One of a model's prompt examples in the file; the title defaults to the prompt's start."""

    what: ClassVar[str] = "an object with title and prompt"

    prompt: NonEmptyText
    title: Text | None = None

    @staticmethod
    def read(value: Any, context: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, list):
            raise expected("a list of {title, prompt} objects")
        examples = _EXAMPLES.validate_python(value, context=context)
        return tuple((e.prompt[:40] if e.title is None else e.title, e.prompt) for e in examples)


_EXAMPLES = TypeAdapter(list[PromptExample])


REASONING_TYPES = ("tokens", "regex", "summarize")


class Reasoning(Frozen):
    """chat-ui's ``reasoning`` setting: how a model's reasoning is told from its answer.

    ``tokens``: between ``beginToken`` (empty: the answer starts inside the reasoning) and
    ``endToken``; ``regex``: the whole output is reasoning and the regex's first group (else
    its match) is the answer; ``summarize``: the whole output is reasoning and the task model
    writes the answer from it."""

    what: ClassVar[str] = "an object with type 'tokens', 'regex' or 'summarize'"

    type: Annotated[
        Literal["tokens", "regex", "summarize"], expect("'tokens', 'regex' or 'summarize'")
    ]
    begin_token: Text = ""
    end_token: Text = ""
    regex: Text = ""

    def finish(self, context: dict[str, Any]) -> Reasoning:
        if self.type == "tokens" and not self.end_token:
            raise expected("a non-empty string", field="endToken", got=self.end_token)
        if self.type == "regex":
            try:
                re.compile(self.regex)
            except re.error:
                raise expected("a regular expression", field="regex", got=self.regex) from None
            if not self.regex:
                raise expected("a regular expression", field="regex", got=self.regex)
        return self


def _endpoints(value: Any, context: dict[str, Any]) -> Any:
    if not isinstance(value, list) or not value:
        raise expected("a non-empty list of endpoints")
    return value


class ModelSpec(Frozen):
    """One model of the picker (chat-ui's fields in snake_case). Fields are in chat-ui's order
    of importance, so the first error a file's entry gets is the one to fix first."""

    name: NonEmptyText
    id: Text
    # An object ({tokenizerUrl, ...}) is not fetched: read as None.
    tokenizer: Tokenizer | None = None
    endpoints: Annotated[tuple[Endpoint, ...], _in_file(_endpoints)] = ()
    # Read only by chat-ui's pages, but checked so that a typo fails at start-up.
    dataset_name: Text | None = Field(None, exclude=True, repr=False)
    dataset_url: Text | None = Field(None, exclude=True, repr=False)
    display_name: Text
    description: Text = ""
    website_url: Text | None = None
    logo_url: Text | None = None
    model_url: Text | None = None
    preprompt: Text = ""
    # chat-ui's URL of the system prompt, read once at start-up (`load`) into `preprompt`.
    preprompt_url: Text | None = Field(None, exclude=True, repr=False)
    chat_prompt_template: Text | None = None
    system_role_supported: Flag = True
    parameters: Annotated[dict[str, Any], _in_file(Parameters.read)] = Field(default_factory=dict)
    prompt_examples: Annotated[tuple[tuple[str, str], ...], _in_file(PromptExample.read)] = ()
    unlisted: Flag = False
    multimodal: Flag = False
    # The image types a multimodal model takes.
    multimodal_accepted_mimetypes: StringTuple = ("image/*",)
    tools: Flag = False  # offered the tools (built-ins, MCP servers) while it answers
    supports_tools: Flag = False  # chat-ui's name for `tools`; either turns them on
    # The tokens the model reads, prompt and answer (the prompt is cut to fit, oldest first).
    context_length: PositiveInt | None = None
    # A reasoning model: its reasoning (deltas, or as `reasoning` says) is shown apart.
    supports_reasoning: Flag = False
    reasoning: Reasoning | None = None

    def finish(self, context: dict[str, Any]) -> ModelSpec:
        """With no endpoints the model runs on the local server at ``inference_url``."""
        update: dict[str, Any] = {"dataset_name": None, "dataset_url": None}
        if "endpoints" not in self.model_fields_set:
            update["endpoints"] = (Endpoint(type="tgi", url=context["inference_url"]),)
        if not isinstance(self.tokenizer, str):
            update["tokenizer"] = None
        update["multimodal_accepted_mimetypes"] = self.multimodal_accepted_mimetypes or ("image/*",)
        update["tools"] = update["supports_tools"] = self.tools or self.supports_tools
        return self.model_copy(update=update)

    def to_public_dict(self) -> dict[str, Any]:
        """The shape `GET /api/models` returns: chat-ui's names, never the endpoints' URLs and
        keys."""
        hidden = {"tokenizer", "endpoints", "chat_prompt_template", "system_role_supported"}
        public = self.model_dump(by_alias=True, exclude=hidden)
        public["promptExamples"] = [{"title": t, "prompt": p} for t, p in self.prompt_examples]
        public["multimodalAcceptedMimetypes"] = list(self.multimodal_accepted_mimetypes)
        return public


class OldModel(Frozen):
    """A retired model: its conversations open with ``transfer_to`` (or the first model)."""

    name: NonEmptyText
    transfer_to: Text | None = None
    id: Text
    display_name: Text


class UsageLimits(Frozen):
    """Per-user limits as configured: ``None`` when unset, 0 for "no limit" (chatui.limits
    fills an anonymous visitor's unset ones with its defaults)."""

    conversations: Count | None = None
    messages: Count | None = None
    message_length: Count | None = None
    messages_per_minute: Count | None = None
    concurrent_generations: Count | None = None


class AppConfig(Frozen):
    """Everything the chat app is configured with, built once at start-up."""

    models: tuple[ModelSpec, ...]
    task_model: ModelSpec
    app_name: str = DEFAULT_APP_NAME
    app_description: str = DEFAULT_APP_DESCRIPTION
    disclaimer: str = DEFAULT_DISCLAIMER
    llm_summarization: bool = True
    old_models: tuple[OldModel, ...] = ()
    usage_limits: UsageLimits = Field(default_factory=UsageLimits)
    messages_before_login: int | None = None

    @property
    def listed_models(self) -> tuple[ModelSpec, ...]:
        """The models of the picker (`unlisted` ones are reachable only by id)."""
        return tuple(m for m in self.models if not m.unlisted)

    def find_model(self, model_id: str | None) -> ModelSpec | None:
        """The model with this id (or name), without fallback."""
        found = [m for key in ("id", "name") for m in self.models if getattr(m, key) == model_id]
        return found[0] if found else None

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


def bundled_model(
    inference_url: str = DEFAULT_INFERENCE_URL, api_key: str | None = None
) -> ModelSpec:
    """The model used when MODELS is unset: SmolLM2 135M on the local inference server
    (sent `Authorization: Bearer <api_key>` when the server requires a key)."""
    return ModelSpec(
        id=BUNDLED_MODEL_ID,
        name=BUNDLED_MODEL_ID,
        display_name="SmolLM2 135M Instruct",
        description=(
            "A tiny instruction-tuned model from Hugging Face that answers quickly on any CPU. "
            "Good for short, simple tasks; expect mistakes on facts and reasoning."
        ),
        website_url="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
        model_url="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
        parameters={
            "temperature": 0.3,
            "top_p": 0.9,
            "repetition_penalty": 1.1,
            "truncate": 7168,  # the bundled server's 8,192-token context less the answer
            "max_new_tokens": 1024,
            "stop": ["<|im_end|>"],
        },
        prompt_examples=(
            ("Write an email", "Write a short email to my team saying the meeting moves to 3pm."),
            ("Explain a concept", "Explain what a hash table is in two sentences."),
            ("Brainstorm names", "Suggest five names for a bakery that sells sourdough bread."),
            ("Fix my grammar", "Fix the grammar: 'me and him goes to the store yesterday'."),
        ),
        endpoints=(
            Endpoint(
                type="tgi",
                url=inference_url.rstrip("/"),
                authorization=f"Bearer {api_key}" if api_key else None,
            ),
        ),
    )
