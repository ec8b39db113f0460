"""History -> prompt: chat-ui's prompt templates, the model's own chat template, ChatML; truncation.

Order, as in chat-ui: the model's ``chatPromptTemplate`` (Handlebars, compiled without HTML
escaping; a template containing ``{%`` or ``{{ messages`` is Jinja instead), else the model's own
chat template (a Jinja string the caller fetched, see `chatui.endpoints.fetch_chat_template`),
else ChatML.

The system prompt: ``preprompt`` when given, else the first system message of the history, else
the model's. Handlebars templates get it as ``@root.preprompt`` (``{{preprompt}}``) and see only
the user and assistant turns in ``messages`` (so ``@first`` is the first user turn), unless they
use ``ifSystem``. Chat templates and ChatML get it as a leading system message, or, when
``systemRoleSupported`` is false, prefixed to the first user message.

Truncation: chat-ui keeps the last ``parameters.truncate`` *tokens* of the input. TGI does this
itself when ``truncate`` is passed as a parameter (the TGI client passes it). For OpenAI-compatible
servers, which have no such parameter, `truncate_messages` drops the oldest non-system messages
until the history fits an approximate budget of ``CHARS_PER_TOKEN`` characters per token.

Must not import Django, httpx, the endpoint clients or the websocket layer (consumers,
routing, `chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pybars import Compiler

if TYPE_CHECKING:
    from chatui.models_config import ModelSpec

Role = Literal["system", "user", "assistant"]
CHARS_PER_TOKEN = 4

ERR_TEMPLATE = "The model's prompt template failed: {error}"

# Marks the end of a message being continued: the prompt is cut right there, so whatever the
# template puts after an assistant turn (end-of-turn tokens) is left out.
_CONTINUE_MARK = "\u2063\u2063continue\u2063\u2063"


class PromptTemplateError(ValueError):
    """A template could not be compiled or rendered; the message is readable."""


@dataclass
class ChatMessage:
    """One turn of the history sent to a model; `images`: data URLs of a user turn's images
    (sent only to multimodal models)."""

    role: Role
    content: str
    images: tuple[str, ...] = ()
    # An answer's stored tool calls (`chatui.tools.calls` records), replayed before its text.
    tool_calls: tuple[dict[str, Any], ...] = ()


def _with_markdown_images(model: ModelSpec, turns: list[ChatMessage]) -> list[ChatMessage]:
    """A text prompt's images, as chat-ui gives them to TGI: markdown images before the text."""
    if not model.multimodal or not any(m.images for m in turns):
        return turns
    return [
        ChatMessage(m.role, "\n".join([*(f"![]({url})" for url in m.images), m.content]))
        if m.images
        else m
        for m in turns
    ]


# -- system prompt handling ---------------------------------------------------------------


def _split_system(
    model: ModelSpec, messages: list[ChatMessage], preprompt: str | None
) -> tuple[str, list[ChatMessage]]:
    """The effective system prompt and the user/assistant turns."""
    turns = [m for m in messages if m.role != "system"]
    if preprompt is None:
        system = next((m.content for m in messages if m.role == "system"), None)
        preprompt = system if system is not None else model.preprompt
    return preprompt or "", turns


def _with_system(model: ModelSpec, system: str, turns: list[ChatMessage]) -> list[dict[str, str]]:
    """Role/content dicts with the system prompt placed the way the model accepts it."""
    result = [{"role": m.role, "content": m.content} for m in turns]
    if not system:
        return result
    if model.system_role_supported:
        return [{"role": "system", "content": system}, *result]
    if result and result[0]["role"] == "user":
        result[0] = {"role": "user", "content": f"{system}\n{result[0]['content']}"}
        return result
    return [{"role": "user", "content": system}, *result]


def build_chat_messages(
    model: ModelSpec, messages: list[ChatMessage], preprompt: str | None
) -> list[dict[str, Any]]:
    """Messages for an OpenAI chat endpoint (system merged when the model has no system role).

    A multimodal model's user turns with images get OpenAI content parts, as chat-ui sends
    them: each image as an ``image_url`` part (a data URL), then the text.
    """
    system, turns = _split_system(model, messages, preprompt)
    result: list[dict[str, Any]] = list(_with_system(model, system, turns))
    if not model.multimodal:
        return result
    offset = len(result) - len(turns)  # 1 when a system message was put first
    for index, turn in enumerate(turns):
        if turn.images:
            entry = result[index + offset]
            images = [{"type": "image_url", "image_url": {"url": url}} for url in turn.images]
            entry["content"] = [*images, {"type": "text", "text": entry["content"]}]
    return result


# -- renderers ------------------------------------------------------------------------------------


def is_jinja(template: str) -> bool:
    """chat-ui reads a template as Jinja first; these markers never occur in Handlebars ones."""
    return "{%" in template or re.search(r"\{\{-?\s*messages\b", template) is not None


# `{{expr}}` -> `{{{expr}}}`: Handlebars' noEscape, which pybars lacks.
_ESCAPED_EXPRESSION = re.compile(r"(?<!\{)\{\{(?![{#/^!>&]|\s*else\s*\}\})(.*?)\}\}(?!\})", re.S)


_TILDE_MARKS = re.compile(r"(?<={{)~|~(?=}})|(?<=}})[ \t]+(?={{)")
_STANDALONE_TAGS = re.compile(
    r"~}}\s*|\s*{{~|"
    # block tags alone on a line: the line's blanks and its newline go
    r"(?<=\n)([ \t]*{{(#[^{}]+|/[^{}]+|![^{}]+|else|else if [^{}]+)}}[ \t]*)+\r?\n|"
    r"^([ \t]*{{(#[^{}]+|![^{}]+)}}[ \t]*)+\r?\n|"
    # ...on the last line: only its blanks (the newline before belongs to the previous line)
    r"(?<=\n)([ \t]*{{(/[^{}]+|![^{}]+)}}[ \t]*)+$"
)


class _Compiler(Compiler):
    """pybars with Handlebars.js's standalone-line rule.

    pybars also drops the newline *before* closing tags on a template's last line, which turns
    chat-ui's ``...<|im_end|>\\n{{/ifAssistant}}{{/each}}`` into ``...<|im_end|>`` without the
    newline; Handlebars.js keeps it.
    """

    def whitespace_control(self, source: str) -> str:
        return _STANDALONE_TAGS.sub(lambda m: _TILDE_MARKS.sub("", m.group(0).strip()), source)


@lru_cache(maxsize=64)
def _compile_handlebars(template: str) -> Any:
    try:
        return _Compiler().compile(_ESCAPED_EXPRESSION.sub(r"{{{\1}}}", template))
    except Exception as exc:  # pybars raises its own and PyMeta parse errors
        raise PromptTemplateError(ERR_TEMPLATE.format(error=exc)) from None


def _role_helper(role: str) -> Any:
    def helper(this: Any, options: dict[str, Any]) -> Any:
        return options["fn"](this) if this.get("from") == role else ""

    return helper


_HELPERS = {
    "ifUser": _role_helper("user"),
    "ifAssistant": _role_helper("assistant"),
    "ifSystem": _role_helper("system"),
}


def _render_handlebars(
    template: str, model: ModelSpec, system: str, turns: list[ChatMessage]
) -> str:
    shown = turns
    if "ifSystem" in template and system:
        shown = [ChatMessage("system", system), *turns]
    context = {
        "name": model.name,
        "id": model.id,
        "preprompt": system,
        "messages": [{"from": m.role, "role": m.role, "content": m.content} for m in shown],
    }
    try:
        return str(_compile_handlebars(template)(context, helpers=_HELPERS))
    except PromptTemplateError:
        raise
    except Exception as exc:
        raise PromptTemplateError(ERR_TEMPLATE.format(error=exc)) from None


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, **_: Any) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)


@lru_cache(maxsize=1)
def _jinja_env() -> ImmutableSandboxedEnvironment:
    """The environment transformers renders chat templates in."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def render_jinja(
    template: str,
    messages: list[dict[str, str]],
    *,
    add_generation_prompt: bool,
    **extra: Any,
) -> str:
    """Render a Hugging Face chat template (sandboxed)."""
    context = {"bos_token": "", "eos_token": "", "tools": None, **extra}
    try:
        compiled = _jinja_env().from_string(template)
        return compiled.render(
            messages=messages, add_generation_prompt=add_generation_prompt, **context
        )
    except TemplateError as exc:
        raise PromptTemplateError(ERR_TEMPLATE.format(error=exc)) from None


def _render_chatml(messages: list[dict[str, str]], *, add_generation_prompt: bool) -> str:
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


# -- the entry point ------------------------------------------------------------------------------


def build_prompt(
    model: ModelSpec,
    messages: list[ChatMessage],
    *,
    preprompt: str | None,
    continue_message: bool = False,
    tokenizer_template: str | None = None,
) -> str:
    """The text prompt for a completion endpoint (TGI, OpenAI ``completions``).

    ``continue_message``: the last assistant message is left open (no end-of-turn), so the
    model writes its continuation.
    """
    system, turns = _split_system(model, messages, preprompt)
    turns = _with_markdown_images(model, turns)
    continuing = continue_message and bool(turns) and turns[-1].role == "assistant"
    if continuing:
        last = turns[-1]
        turns = [*turns[:-1], ChatMessage("assistant", last.content + _CONTINUE_MARK)]
    template = model.chat_prompt_template
    if template and not is_jinja(template):
        prompt = _render_handlebars(template, model, system, turns)
    else:
        dicts = _with_system(model, system, turns)
        jinja_template = template or tokenizer_template
        if jinja_template:
            prompt = render_jinja(
                jinja_template, dicts, add_generation_prompt=not continuing, preprompt=system
            )
        else:
            prompt = _render_chatml(dicts, add_generation_prompt=not continuing)
    if continuing:
        prompt = _cut_at_continue_mark(prompt, model)
    return prompt


def _cut_at_continue_mark(prompt: str, model: ModelSpec) -> str:
    index = prompt.rfind(_CONTINUE_MARK)
    if index >= 0:
        return prompt[:index]
    # The template dropped the mark (it rewrote the content): chat-ui's way, trim the end and
    # strip a trailing stop sequence.
    prompt = prompt.replace(_CONTINUE_MARK, "").rstrip()
    for stop in model.parameters.get("stop") or ():
        if stop and prompt.endswith(stop):
            prompt = prompt[: -len(stop)]
    return prompt


def context_tokens(model: ModelSpec) -> int | None:
    """How many tokens of input the model reads: `contextLength` less the answer's
    `max_new_tokens`, else `parameters.truncate` (None: not configured)."""
    if model.context_length:
        return max(1, model.context_length - int(model.parameters.get("max_new_tokens") or 0))
    return model.parameters.get("truncate")


def truncate_messages(
    messages: list[ChatMessage], max_tokens: int | None, *, chars_per_token: int = CHARS_PER_TOKEN
) -> list[ChatMessage]:
    """Drop the oldest non-system messages until the rest fit ``max_tokens`` (approximately).

    System messages and the last message are always kept, so the result may still exceed the
    budget; the server then answers with its own error.
    """
    if not max_tokens or not messages:
        return list(messages)
    budget = max_tokens * chars_per_token
    kept = list(messages)
    total = sum(len(m.content) for m in kept)
    index = 0
    while total > budget and index < len(kept) - 1:
        if kept[index].role == "system":
            index += 1
            continue
        total -= len(kept[index].content)
        del kept[index]
    return kept
