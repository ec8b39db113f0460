"""The chat configuration as the app uses it: endpoints, models, retired models, usage limits
and the whole `AppConfig`, plus the bundled default model.

Plain frozen dataclasses (``dataclasses.replace`` and ``fields`` work on them), built by `load`
from what `schema` validated; the rest of `chatui` imports these, never the schema. Must not
import Django, pydantic, `chatui.models` or `chatui.endpoints`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_INFERENCE_URL = "http://127.0.0.1:8080"
DEFAULT_APP_NAME = "ChatUI"
DEFAULT_APP_DESCRIPTION = "Chat with open models running on your own server."
DEFAULT_DISCLAIMER = "Generated content may be inaccurate or false."


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
        endpoints=(Endpoint(type="tgi", url=inference_url.rstrip("/")),),
    )
