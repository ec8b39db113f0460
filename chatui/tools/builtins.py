"""Tools written in Python: a registry and two built-ins, offered to models with tools.

A tool is a Python function with a name, a description and a JSON Schema of its arguments
(OpenAI's function format, which the model server turns into a grammar). The built-ins need no
network: `calculator` (arithmetic read by walking Python's syntax tree, never `eval`) and
`current_datetime`. Register more from any module Django imports (an app's `ready()`):

    from chatui.tools import register_tool

    register_tool(
        name="word_count",
        description="Count the words of a text",
        parameters={"type": "object", "properties": {"text": {"type": "string"}},
                    "required": ["text"]},
        function=lambda text: str(len(text.split())),
    )

A tool returns text (what the model reads back); an exception becomes the text of its error.
Must not import Django's ORM, the web layer or the websocket layer (consumers, routing,
`chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100
CALCULATOR_ERROR = "calculator: {0}"


@dataclass(frozen=True)
class Tool:
    """One function a model may call."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., str]

    def spec(self) -> dict[str, Any]:
        """The tool as OpenAI's (and TGI's) `tools` list holds it."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def call(self, arguments: dict[str, Any]) -> str:
        """Run it; a failure is text too, so the model (and the reader) see what went wrong."""
        try:
            return str(self.function(**arguments))
        except Exception as exc:  # a tool's failure is its answer, never the chat's
            return f"error: {exc}"


_REGISTRY: dict[str, Tool] = {}


def register_tool(
    *, name: str, description: str, parameters: dict[str, Any], function: Callable[..., str]
) -> Tool:
    """Offer `function` to every model with tools; a name registered again is replaced."""
    tool = Tool(name, description, parameters, function)
    _REGISTRY[name] = tool
    return tool


def tool_list() -> list[Tool]:
    return list(_REGISTRY.values())


def tool_get(name: str) -> Tool | None:
    return _REGISTRY.get(name)


# ----------------------------------------------------------------------------- calculator

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorError(ValueError):
    """An expression the calculator refuses; the message says why."""


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent {right} is over {MAX_EXPONENT}")
        if (
            isinstance(node.op, ast.Pow)
            and abs(left) > 1
            and abs(right) * math.log10(abs(left)) > math.log10(MAX_MAGNITUDE)
        ):
            raise CalculatorError("the result is too large")
        try:
            value = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise CalculatorError("division by zero") from exc
        if isinstance(value, complex):
            raise CalculatorError("the result is not a real number")
        if abs(value) > MAX_MAGNITUDE:
            raise CalculatorError("the result is too large")
        return value
    raise CalculatorError(f"only numbers and + - * / // % ** ( ) are allowed, not {_name(node)}")


def _name(node: ast.AST) -> str:
    return type(node).__name__ if not isinstance(node, ast.Constant) else repr(node.value)


def calculate(expression: str) -> str:
    """Evaluate arithmetic: numbers, + - * / // % **, unary signs and parentheses."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is over {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from exc
    value = _evaluate(tree)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return str(value)


def current_datetime(timezone: str = "UTC") -> str:
    """The date and time now, ISO 8601, in UTC (the only zone without a database)."""
    if timezone.upper() not in ("UTC", "Z", "GMT"):
        raise ValueError(f"unknown time zone {timezone!r}: only UTC is available")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return f"{now.isoformat()} ({now:%A})"


register_tool(
    name="calculator",
    description="Evaluate an arithmetic expression exactly (+ - * / // % ** and parentheses)",
    parameters={
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "maxLength": MAX_EXPRESSION_CHARS,
                "description": "e.g. (12.5 * 4) / 3",
            }
        },
        "required": ["expression"],
    },
    function=calculate,
)
register_tool(
    name="current_datetime",
    description="The current date, time and weekday (UTC)",
    parameters={"type": "object", "properties": {}},
    function=current_datetime,
)
