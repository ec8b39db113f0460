"""Schemathesis hooks for the contract test: keep valid bodies inside the token budget and
their grammars and tools among those the grammar engine can follow.

The OpenAPI document states every rule of the server as JSON Schema except the token budget
(`max_input_tokens`, `max_total_tokens`), which depends on the tokenizer and is stated in
words. Valid (positive) bodies are therefore shortened here so that they fit any tokenizer:
at most 16 characters per text (a character is at most 4 tokens) and at most 2 new tokens,
which also keeps every generation to a few milliseconds. A generated grammar (a random
object is rarely a schema, a random string rarely a regex) is replaced by a valid one of the
same form, and tools are made coherent (a `tool_choice` names an offered tool, no
`response_format` beside them), the rules the document states in words. Invalid (negative)
bodies are left exactly as generated. Loaded by the schemathesis CLI through `SCHEMATHESIS_HOOKS`.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MAX_CHARS = 16
MAX_ITEMS = 2
MAX_NEW_TOKENS = 2


def short(value: Any) -> Any:
    return value[:MAX_CHARS] if isinstance(value, str) else value


def capped(value: Any) -> Any:
    """At most MAX_NEW_TOKENS; absent becomes MAX_NEW_TOKENS (the default fills the context)."""
    if value is None:
        return MAX_NEW_TOKENS
    return min(value, MAX_NEW_TOKENS) if isinstance(value, int | float) else value


def shape_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    message = {**message, "role": short(message.get("role"))}
    content = message.get("content")
    if isinstance(content, list):
        content = [
            {**part, "text": short(part.get("text"))} if isinstance(part, dict) else part
            for part in content[:MAX_ITEMS]
        ]
    message["content"] = short(content)
    return message


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
GRAMMARS = {
    "json": {"type": "json", "value": SCHEMA},
    "regex": {"type": "regex", "value": "[a-z]{1,4}"},
    "json_schema": {"type": "json_schema", "value": {"name": "a", "schema": SCHEMA}},
}
TOOL = {"type": "function", "function": {"name": "f", "parameters": SCHEMA}}


def valid_grammar(grammar: Any) -> Any:
    """A grammar of the same form that the engine can follow."""
    if not isinstance(grammar, dict):
        return grammar
    if grammar.get("type") == "json_schema" and "json_schema" in grammar:
        return {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}
    return GRAMMARS.get(grammar.get("type"), grammar)


def shape_tools(body: dict[str, Any]) -> None:
    """Tools as the server accepts them: offered ones that it can follow, a `tool_choice` that
    names one of them (or none without tools), no `response_format` beside them."""
    choice = body.get("tool_choice")
    if body.get("tools"):
        body["tools"] = [TOOL]
        if isinstance(choice, dict):
            body["tool_choice"] = {**choice, "function": {"name": "f"}}
        if choice != "none":
            body.pop("response_format", None)
    elif isinstance(choice, dict) or choice == "required":
        body.pop("tool_choice")


def shape_body(body: dict[str, Any]) -> dict[str, Any]:
    """A valid body of any generation route, kept valid, with short texts and answers."""
    body = dict(body)
    if "inputs" in body:
        body["inputs"] = short(body["inputs"])
        parameters = body.get("parameters")
        if isinstance(parameters, dict):
            body["parameters"] = {
                **parameters,
                "max_new_tokens": capped(parameters.get("max_new_tokens")),
            }
            if parameters.get("grammar") is not None:
                body["parameters"]["grammar"] = valid_grammar(parameters["grammar"])
        elif parameters is None and "parameters" not in body:
            body["parameters"] = {"do_sample": True, "max_new_tokens": MAX_NEW_TOKENS}
    if isinstance(body.get("messages"), list):
        body["messages"] = [shape_message(m) for m in body["messages"][:MAX_ITEMS]]
        if body.get("response_format") is not None:
            body["response_format"] = valid_grammar(body["response_format"])
        shape_tools(body)
    if "prompt" in body:
        prompt = body["prompt"]
        body["prompt"] = [short(p) for p in prompt] if isinstance(prompt, list) else short(prompt)
    if "messages" in body or "prompt" in body:
        body["max_tokens"] = capped(body.get("max_tokens"))
        if body.get("max_completion_tokens") is not None:
            body["max_completion_tokens"] = capped(body["max_completion_tokens"])
    return body


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and isinstance(case.body, dict):
        case.body = shape_body(case.body)
    return case
