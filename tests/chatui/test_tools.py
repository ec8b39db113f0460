"""The chat's tools: the calculator reads arithmetic only (no `eval`), within bounds; the date
tool; registering a tool."""

from __future__ import annotations

import datetime as dt

import pytest

from chatui.tools import (
    MAX_EXPRESSION_CHARS,
    CalculatorError,
    calculate,
    register_tool,
    tool_get,
    tool_list,
)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("2 ** 10", "1024"),
        ("2 ^ 8", "256"),
        ("-(3 - 5) * +2", "4"),
        ("1.5e3 / 3", "500"),
        ("0.1 + 0.2", "0.30000000000000004"),
    ],
)
def test_calculator_computes(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('true')", "only numbers"),
        ("len('abc')", "only numbers"),
        ("x + 1", "only numbers"),
        ("'a' * 3", "only numbers"),
        ("[1, 2]", "only numbers"),
        ("1 if 1 else 2", "only numbers"),
        ("2 ** 100000", "exponent"),
        ("10 ** 200", "too large"),
        ("9" * 150 + " * 10", "too large"),
        ("1 / 0", "division by zero"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 +", "not an arithmetic expression"),
        ("1" * (MAX_EXPRESSION_CHARS + 1), "characters"),
    ],
)
def test_calculator_refuses(expression, reason):
    with pytest.raises(CalculatorError, match=reason):
        calculate(expression)


def test_tool_errors_are_text_for_the_model():
    assert tool_get("calculator").call({"expression": "1/0"}) == "error: division by zero"
    assert tool_get("calculator").call({"nope": 1}).startswith("error:")


def test_current_datetime_is_now_in_utc():
    text = tool_get("current_datetime").call({})
    stamp = dt.datetime.fromisoformat(text.split(" ")[0])
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 5
    assert tool_get("current_datetime").call({"timezone": "Mars/Base"}).startswith("error:")


def test_register_tool_offers_it_with_its_schema():
    parameters = {"type": "object", "properties": {"text": {"type": "string"}}}
    register_tool(
        name="word_count",
        description="Count words",
        parameters=parameters,
        function=lambda text: str(len(text.split())),
    )
    try:
        spec = tool_get("word_count").spec()
        assert spec == {
            "type": "function",
            "function": {
                "name": "word_count",
                "description": "Count words",
                "parameters": parameters,
            },
        }
        assert tool_get("word_count").call({"text": "a b c"}) == "3"
        assert {"calculator", "current_datetime", "word_count"} <= {t.name for t in tool_list()}
    finally:
        from chatui.tools import builtins

        builtins._REGISTRY.pop("word_count")
