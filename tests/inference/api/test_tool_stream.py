"""Reading a constrained tool answer back as it streams (`inference.api.tools`), piece by piece
in every split a tokenizer could make: the pieces always add up to the whole answer."""

from __future__ import annotations

import json

import pytest

from inference.api.tools import ToolCallStream, decode_partial_string, parse_tool_output

CALL = '{"function": {"_name": "get_weather", "location": "Paris \\"15e\\"", "days": [1, 2]}}'
WORDS = (
    '{"function": {"_name": "no_tool", "content": "Hi \\u00e9t\\u00e9 \\ud83d\\ude00 \\"x\\"\\n"}}'
)


def splits(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 200])
def test_call_arguments_stream_to_the_whole(size):
    stream = ToolCallStream()
    deltas = [d for piece in splits(CALL, size) for d in stream.feed(piece)]
    output, owed = stream.finish()
    deltas += owed
    assert deltas[0].name == "get_weather" and deltas[0].arguments == ""
    assert all(d.name is None for d in deltas[1:])
    arguments = "".join(d.arguments for d in deltas)
    assert arguments == output.arguments
    assert json.loads(arguments) == {"location": 'Paris "15e"', "days": [1, 2]}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 200])
def test_no_tool_words_stream_decoded(size):
    stream = ToolCallStream()
    words = ""
    for piece in splits(WORDS, size):
        assert stream.feed(piece) == []  # no call
        words += stream.content_delta()
    output, owed = stream.finish()
    assert owed == [] and not output.is_call
    assert words == output.content == 'Hi été 😀 "x"\n'


def test_partial_strings_hold_back_incomplete_escapes():
    assert decode_partial_string("ab\\") == "ab"
    assert decode_partial_string("ab\\u00") == "ab"
    assert decode_partial_string("\\ud83d\\ude0") == ""
    assert decode_partial_string('done" tail') == "done"


def test_answers_cut_short():
    output = parse_tool_output('{"function": {"_name": "get_we')
    assert not output.is_call and output.content == '{"function": {"_name": "get_we'
    output = parse_tool_output('{"function": {"_name": "no_tool", "content": "Once upon a \\')
    assert not output.is_call and output.content == "Once upon a "
