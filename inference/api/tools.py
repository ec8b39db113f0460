"""Tool calling on `/v1/chat/completions`, TGI's way: the answer is constrained to one JSON
object that names one of the offered functions and holds its arguments.

The model writes `{"function": {"_name": "get_weather", "location": "Paris"}}`: one branch per
function (its `_name` fixed, its parameters' schema for the rest); with `tool_choice` "auto" a
`no_tool` branch lets it answer in words (`{"_name": "no_tool", "content": "..."}`). The prompt
offers the tools through the chat template when the template reads `tools`, else (TGI's
fallback) `tool_prompt` and the functions' JSON are appended to the last message. This module
builds that grammar and prompt, and turns the output back into OpenAI's `tool_calls`, whole or
as stream deltas. Must not import torch or the web framework.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from inference.api.errors import ValidationFailed
from inference.api.schemas import ChatRequest, Function, Tool, ToolChoiceFunction

NO_TOOL = "no_tool"
NAME_KEY = "_name"
DEFAULT_TOOL_PROMPT = (
    "Given the functions available, please respond with a JSON for a function call with its "
    "proper arguments that best answers the given prompt. Respond in the format "
    "{name: function name, parameters: dictionary of argument name and its value}."
    "Do not use variables."
)
NO_TOOL_FUNCTION = {
    "name": NO_TOOL,
    "description": "Open ended response with no specific tool selected",
    "parameters": {
        "type": "object",
        "properties": {
            "content": {"type": "string", "description": "The response content"},
        },
        "required": ["content"],
    },
}
TOOL_NOT_FOUND = "Tool error: Tool with name {0} not found"
TOOLS_AND_FORMAT = "`tools` and `response_format` cannot be used together"
NO_TOOLS_REQUIRED = "`tool_choice` {0} needs at least one tool in `tools`"
RESERVED_NAME = "Tool error: `{0}` is a reserved function name"
BAD_PARAMETERS = "Tool error: the parameters of `{0}` must be a JSON Schema object"
# The start of every constrained answer, up to the function's name (separators as the grammar
# fixes them: `, ` and `: `).
_NAME = re.compile(r'\{"function": \{"_name": "((?:[^"\\]|\\.)*)"')
_NO_TOOL_CONTENT = re.compile(r'\{"function": \{"_name": "no_tool", "content": "')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"'}


def decode_partial_string(body: str) -> str:
    """The text of a JSON string written so far (`body` follows its opening quote): escapes
    decoded, an escape still incomplete left out, nothing after the closing quote."""
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char == '"':
            break
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 >= len(body):
            break
        kind = body[i + 1]
        if kind != "u":
            out.append(_ESCAPES.get(kind, kind))
            i += 2
            continue
        if i + 6 > len(body):
            break
        code = int(body[i + 2 : i + 6], 16)
        if 0xD800 <= code < 0xDC00:  # a surrogate pair: wait for its second half
            if i + 12 > len(body):
                break
            low = int(body[i + 8 : i + 12], 16)
            out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
            i += 12
            continue
        out.append(chr(code))
        i += 6
    return "".join(out)


@dataclass(frozen=True)
class ToolPlan:
    """What a chat request with tools becomes: a grammar, and how to offer the tools."""

    schema: dict[str, Any]  # the JSON Schema the answer must follow
    functions: list[dict[str, Any]]  # name / description / parameters, `no_tool` included
    tool_prompt: str


def function_parameters(tool: Tool) -> dict[str, Any]:
    """A function's parameter schema (`parameters`, or TGI's `arguments`), an object."""
    parameters = tool.function.parameters
    if parameters is None:
        parameters = tool.function.arguments
    parameters = {} if parameters is None else parameters
    if not isinstance(parameters, dict):
        raise ValidationFailed(BAD_PARAMETERS.format(tool.function.name))
    return parameters


def _branch(name: str, parameters: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One function's branch: `_name` fixed first, then its own parameters."""
    for key in ("$defs", "definitions"):
        defs.update(parameters.get(key) or {})
    properties = parameters.get("properties") or {}
    required = [r for r in parameters.get("required") or [] if r != NAME_KEY]
    rest = {k: v for k, v in parameters.items() if k not in ("$defs", "definitions", "$schema")}
    return {  # NOTE: the rest of the schema is kept, so a feature the engine lacks is refused
        **rest,
        "type": "object",
        "properties": {NAME_KEY: {"const": name}, **properties},
        "required": [NAME_KEY, *required],
        "additionalProperties": parameters.get("additionalProperties", False),
    }


def tool_schema(functions: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer's schema: `{"function": <one of the functions' branches>}`."""
    defs: dict[str, Any] = {}
    branches = [_branch(f["name"], f["parameters"], defs) for f in functions]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"function": {"anyOf": branches} if len(branches) > 1 else branches[0]},
        "required": ["function"],
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def plan_tools(body: ChatRequest) -> ToolPlan | None:
    """The plan for `body`'s tools, or None when it calls none (no tools, or `none`)."""
    choice = body.tool_choice or "auto"
    if not body.tools or choice == "none":
        if isinstance(choice, ToolChoiceFunction) or choice == "required":
            name = choice.function.name if isinstance(choice, ToolChoiceFunction) else choice
            raise ValidationFailed(NO_TOOLS_REQUIRED.format(json.dumps(name)))
        return None
    if body.response_format is not None:
        raise ValidationFailed(TOOLS_AND_FORMAT)
    functions = []
    for tool in body.tools:
        if tool.function.name == NO_TOOL:
            raise ValidationFailed(RESERVED_NAME.format(NO_TOOL))
        functions.append(
            {
                "name": tool.function.name,
                "description": tool.function.description,
                "parameters": function_parameters(tool),
            }
        )
    if isinstance(choice, ToolChoiceFunction):
        chosen = [f for f in functions if f["name"] == choice.function.name]
        if not chosen:
            raise ValidationFailed(TOOL_NOT_FOUND.format(choice.function.name))
        functions = chosen
    elif choice == "auto":
        functions = [*functions, NO_TOOL_FUNCTION]
    return ToolPlan(
        schema=tool_schema(functions),
        functions=functions,
        tool_prompt=DEFAULT_TOOL_PROMPT if body.tool_prompt is None else body.tool_prompt,
    )


def template_tools(plan: ToolPlan) -> list[dict[str, Any]]:
    """The tools as chat templates read them (OpenAI's `{"type": "function", ...}`)."""
    return [{"type": "function", "function": f} for f in plan.functions]


def tools_prompt(plan: ToolPlan) -> str:
    """TGI's fallback for templates without tools: appended to the last message."""
    return f"\n---\n{plan.tool_prompt}\n{json.dumps(template_tools(plan))}"


@dataclass
class ToolOutput:
    """A constrained answer read back: a call (`name`, `arguments` JSON text) or words."""

    name: str | None = None
    arguments: str = "{}"
    content: str | None = None

    @property
    def is_call(self) -> bool:
        return self.name is not None and self.name != NO_TOOL


def parse_tool_output(text: str) -> ToolOutput:
    """The call in `text`. An answer cut by the length limit: the words of a `no_tool` one so
    far, else the text as it is."""
    try:
        call = json.loads(text)["function"]
        name = call.pop(NAME_KEY)
    except (ValueError, KeyError, TypeError, AttributeError):
        words = _NO_TOOL_CONTENT.match(text)
        if words is not None:
            return ToolOutput(name=NO_TOOL, content=decode_partial_string(text[words.end() :]))
        return ToolOutput(content=text)
    if name == NO_TOOL:
        return ToolOutput(name=NO_TOOL, content=str(call.get("content", "")))
    return ToolOutput(name=name, arguments=arguments_text(text) or json.dumps(call))


def arguments_text(text: str) -> str | None:
    """The arguments exactly as the model wrote them (so streamed pieces add up to it)."""
    match = _NAME.match(text)
    if match is None:
        return None
    rest = text[match.end() :].rstrip()
    if rest.startswith("}"):
        return "{}"
    if not rest.startswith(", ") or not rest.endswith("}"):
        return None
    return "{" + rest[2:-1]


@dataclass
class ToolCallStream:
    """Turns a constrained answer's text, as it streams, into `tool_calls` deltas.

    The name goes out once it is whole; then the arguments' text, holding back a final `}`
    that may be the outer object's close. A `no_tool` answer's words stream as content
    (`content_delta`).
    """

    text: str = ""
    name: str | None = None
    _args_from: int = 0
    _sent: int = 0
    sent_content: str = ""  # the words of a `no_tool` answer streamed so far

    def feed(self, piece: str) -> list[Function]:
        self.text += piece
        out: list[Function] = []
        if self.name is None:
            match = _NAME.match(self.text)
            if match is None:
                return out
            self.name = json.loads(f'"{match.group(1)}"')
            self._args_from = match.end()
            if self.name != NO_TOOL:
                out.append(Function(name=self.name, arguments=""))
        if self.name == NO_TOOL:
            return out
        ready = self._arguments_so_far()
        if ready is not None and len(ready) > self._sent:
            out.append(Function(arguments=ready[self._sent :]))
            self._sent = len(ready)
        return out

    def content_delta(self) -> str:
        """The words of a `no_tool` answer written since the last call ("" otherwise)."""
        match = _NO_TOOL_CONTENT.match(self.text)
        if match is None:
            return ""
        content = decode_partial_string(self.text[match.end() :])
        piece = content[len(self.sent_content) :]
        self.sent_content = content
        return piece

    def _arguments_so_far(self) -> str | None:
        rest = self.text[self._args_from :]
        if rest.startswith("}") or len(rest) < 2:
            return None
        body = "{" + rest[2:]
        stripped = body.rstrip()
        return stripped[:-1] if stripped.endswith("}") else body

    def finish(self) -> tuple[ToolOutput, list[Function]]:
        """The answer read whole, and the deltas still owed."""
        output = parse_tool_output(self.text)
        if not output.is_call:
            return output, []
        deltas = []
        if self.name is None:
            deltas.append(Function(name=output.name, arguments=""))
        if len(output.arguments) > self._sent and output.arguments.startswith(
            (self._arguments_so_far() or "")[: self._sent]
        ):
            deltas.append(Function(arguments=output.arguments[self._sent :]))
        return output, deltas
