"""Text the model reads: chat messages through the tokenizer's chat template, and offsets.

Must not import torch or the web framework.
"""

from __future__ import annotations

import json
from typing import Any

from inference.api.errors import TEMPLATE_FAILED, TemplateFailed, ValidationFailed
from inference.api.schemas import Message
from inference.api.tools import ToolPlan, template_tools, tools_prompt
from inference.api.validation import IMAGE_CONTENT

NO_CHAT_TEMPLATE = "the model's tokenizer has no chat template"


def message_text(message: Message) -> str:
    """A message's content as one string (text parts joined; images refused)."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for chunk in content:
        if chunk.type != "text":
            raise ValidationFailed(IMAGE_CONTENT)
        parts.append(chunk.text or "")
    return "".join(parts)


def template_reads_tools(tokenizer: Any) -> bool:
    """Whether the chat template has its own way of offering tools."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def conversation_of(messages: list[Message], *, native_tools: bool) -> list[dict[str, Any]]:
    """Messages as chat templates read them; an assistant's earlier `tool_calls` become its
    text where the template has no tool format of its own."""
    conversation = []
    for m in messages:
        entry: dict[str, Any] = {"role": m.role, "content": message_text(m)}
        calls = (m.model_extra or {}).get("tool_calls")
        if calls:
            if native_tools:
                entry["tool_calls"] = calls
            elif not entry["content"]:
                entry["content"] = json.dumps(calls)
        conversation.append(entry)
    return conversation


def render_chat(tokenizer: Any, messages: list[Message], tools: ToolPlan | None = None) -> str:
    """The prompt for `messages`, ending where the assistant's answer starts; `tools` are
    offered through the template when it reads them, else appended to the last message."""
    if not getattr(tokenizer, "chat_template", None):
        raise TemplateFailed(TEMPLATE_FAILED.format(NO_CHAT_TEMPLATE))
    native = tools is not None and template_reads_tools(tokenizer)
    conversation = conversation_of(messages, native_tools=native)
    extra: dict[str, Any] = {}
    if tools is not None and native:
        extra["tools"] = template_tools(tools)
    elif tools is not None and conversation:
        conversation[-1]["content"] += tools_prompt(tools)
    try:
        return tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True, **extra
        )
    except Exception as exc:
        raise TemplateFailed(TEMPLATE_FAILED.format(exc)) from exc


def tokens_json(
    tokenizer: Any, text: str, *, add_special_tokens: bool, keep: int | None = None
) -> str:
    """TGI's `/tokenize` answer as JSON text: each id with its text and character offsets (the
    last `keep` when given). Call it in a worker thread: 2 MB of text is 400,000 tokens.

    NOTE: written as text, not as 400,000 `SimpleToken` models: so many objects set off full
    garbage collections that hold the GIL, and so the event loop, for a third of a second.
    """
    encoding = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids = encoding["input_ids"]
    offsets = encoding.get("offset_mapping") or [(0, 0)] * len(ids)
    pairs = list(zip(ids, offsets, strict=False))
    if keep is not None:
        pairs = pairs[-keep:]
    items = [
        f'{{"id":{int(i)},"text":{json.dumps(text[a:b], ensure_ascii=False)},'
        f'"start":{int(a)},"stop":{int(b)}}}'
        for i, (a, b) in pairs
    ]
    return "[" + ",".join(items) + "]"
