"""Grammars, `response_format` and tool calls through the real server on a real socket, called
as TGI's users call them (huggingface_hub's clients, plain HTTP), over the tiny random model.

A random model writes noise: every schema here bounds its strings and arrays, so the grammar
ends each answer, and the answer must still parse and validate.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import httpx
import jsonschema
import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient

from inference.api.errors import VALIDATION_PREFIX
from inference.api.tools import TOOL_NOT_FOUND, TOOLS_AND_FORMAT
from inference.config import EngineConfig
from inference.types import INVALID_REGEX, UNSUPPORTED_SCHEMA
from tests.inference.api.conftest import serve, tiny_engine
from tests.inference.live_server import LiveServer

pytestmark = pytest.mark.usefixtures("hub_client")

# Room for the tool prompt and the tools' JSON in the prompt.
TOOL_LIMITS = EngineConfig(
    max_concurrent_requests=8,
    max_input_tokens=1024,
    max_total_tokens=2048,
    max_batch_prefill_tokens=1024,
    max_batch_total_tokens=16384,
    max_batch_size=8,
)
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 99},
        "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 2},
    },
    "required": ["name", "age", "pets"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "maxLength": 12},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time now",
        "parameters": {"type": "object", "properties": {}},
    },
}
TOOLS = [WEATHER, TIME]
MESSAGES = [{"role": "user", "content": "What is the weather like in Paris?"}]


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    server = serve(tiny_engine(TOOL_LIMITS), TOOL_LIMITS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def url(live: LiveServer) -> str:
    return live.url


def check_call(name: str, arguments: str) -> None:
    """A call names an offered tool and its arguments follow that tool's parameters."""
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    assert name in tools
    jsonschema.validate(json.loads(arguments), tools[name])


# ---------------------------------------------------------------------------- grammar


def test_text_generation_with_a_json_grammar(url):
    client = InferenceClient(model=url)
    grammar = {"type": "json", "value": PERSON}
    output = client.text_generation("Ada: ", max_new_tokens=120, grammar=grammar, details=True)
    jsonschema.validate(json.loads(output.generated_text), PERSON)
    assert output.details.finish_reason == "eos_token"


def test_text_generation_stream_with_a_json_grammar(url):
    client = InferenceClient(model=url)
    tokens = client.text_generation(
        "Ada: ", max_new_tokens=120, grammar={"type": "json", "value": PERSON}, stream=True
    )
    jsonschema.validate(json.loads("".join(tokens).removesuffix("<|im_end|>")), PERSON)


def test_regex_and_json_schema_forms_on_every_route(url):
    regex = {"type": "regex", "value": r"[A-Z][a-z]{2,5} [0-9]{2}"}
    body = {"inputs": "Name and age:", "parameters": {"max_new_tokens": 30, "grammar": regex}}
    text = httpx.post(url + "/generate", json=body, timeout=60).json()["generated_text"]
    assert re.fullmatch(regex["value"], text)
    compat = httpx.post(url + "/", json=body, timeout=60).json()
    assert re.fullmatch(regex["value"], compat[0]["generated_text"])
    named = {"type": "json_schema", "value": {"name": "person", "schema": PERSON}}
    body["parameters"]["grammar"] = named
    body["parameters"]["max_new_tokens"] = 120
    with httpx.stream("POST", url + "/generate_stream", json=body, timeout=60) as response:
        events = [json.loads(line[5:]) for line in response.iter_lines() if line]
    jsonschema.validate(json.loads(events[-1]["generated_text"]), PERSON)


async def test_async_client_grammar(url):
    client = AsyncInferenceClient(model=url)
    grammar = {"type": "json", "value": PERSON}
    texts = await asyncio.gather(
        *(client.text_generation(f"Person {i}:", max_new_tokens=120, grammar=grammar)
          for i in range(3))
    )  # fmt: skip
    for text in texts:
        jsonschema.validate(json.loads(text), PERSON)


# -------------------------------------------------------------------- response_format


def test_chat_response_format_tgi_and_openai_forms(url):
    client = InferenceClient(model=url)
    reply = client.chat_completion(
        MESSAGES, max_tokens=120, response_format={"type": "json", "value": PERSON}
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content), PERSON)
    openai_form = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
    body = {"messages": MESSAGES, "max_tokens": 120, "response_format": openai_form}
    answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=60).json()
    jsonschema.validate(json.loads(answer["choices"][0]["message"]["content"]), PERSON)


def test_chat_json_object_mode_streamed(url):
    body = {
        "messages": MESSAGES,
        "max_tokens": 60,
        "stream": True,
        "response_format": {"type": "json_object"},
    }
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as response:
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    if chunks[-1]["choices"][0]["finish_reason"] == "stop":  # a whole object (not cut short)
        assert isinstance(json.loads(text), dict)
    else:
        assert text.startswith("{")


# ------------------------------------------------------------------------------ tools


def test_chat_tool_call_required(url):
    client = InferenceClient(model=url)
    reply = client.chat_completion(MESSAGES, max_tokens=150, tools=TOOLS, tool_choice="required")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id
    check_call(call.function.name, call.function.arguments)


def test_chat_tool_call_named_function_streamed(url):
    client = InferenceClient(model=url)
    chunks = list(
        client.chat_completion(
            MESSAGES,
            max_tokens=150,
            tools=TOOLS,
            tool_choice={"function": {"name": "get_weather"}},
            stream=True,
        )
    )
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices[0].delta.tool_calls]
    assert deltas[0].function.name == "get_weather"
    assert len({d.id for d in deltas}) == 1
    arguments = "".join(d.function.arguments for d in deltas)
    check_call("get_weather", arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # The same call, not streamed, has the same arguments (greedy).
    whole = client.chat_completion(
        MESSAGES,
        max_tokens=150,
        tools=TOOLS,
        tool_choice={"function": {"name": "get_weather"}},
        temperature=0,
    )
    streamed = client.chat_completion(
        MESSAGES,
        max_tokens=150,
        tools=TOOLS,
        tool_choice={"function": {"name": "get_weather"}},
        temperature=0,
        stream=True,
    )
    pieces = [
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in streamed
        if c.choices[0].delta.tool_calls
    ]
    assert "".join(pieces) == whole.choices[0].message.tool_calls[0].function.arguments


async def test_async_client_tools_auto(url):
    client = AsyncInferenceClient(model=url)
    reply = await client.chat_completion(
        MESSAGES, max_tokens=150, tools=TOOLS, tool_choice="auto", seed=5, temperature=1.0
    )
    choice = reply.choices[0]
    if choice.message.tool_calls:  # the model chose a tool
        assert choice.finish_reason == "tool_calls"
        check_call(choice.message.tool_calls[0].function.name,
                   choice.message.tool_calls[0].function.arguments)  # fmt: skip
    else:  # it chose to answer in words (`no_tool`)
        assert isinstance(choice.message.content, str)
        assert choice.finish_reason in ("stop", "length")
    stream = await client.chat_completion(
        MESSAGES, max_tokens=150, tools=TOOLS, tool_choice="required", stream=True
    )
    chunks = [c async for c in stream]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_history_is_rendered(url):
    """A follow-up after a tool result (an assistant `tool_calls` message and a `tool`
    message) is accepted and answered."""
    messages = [
        *MESSAGES,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C, sunny"},
    ]
    body = {"messages": messages, "max_tokens": 5}
    answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=60)
    assert answer.status_code == 200
    templated = httpx.post(url + "/chat_tokenize", json=body, timeout=60).json()["templated_text"]
    assert "21 C, sunny" in templated and "get_weather" in templated


# ------------------------------------------------------------------------------- 422s


def refused(url: str, path: str, body: dict) -> str:
    response = httpx.post(url + path, json=body, timeout=60)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["error_type"] == "validation"
    assert payload["error"].startswith(VALIDATION_PREFIX)
    return payload["error"].removeprefix(VALIDATION_PREFIX)


def test_invalid_grammars_get_422_with_the_reason(url):
    def generate(grammar: dict) -> str:
        return refused(url, "/generate", {"inputs": "x", "parameters": {"grammar": grammar}})

    message = generate({"type": "json", "value": {"type": "array", "uniqueItems": True}})
    assert message.startswith(UNSUPPORTED_SCHEMA.format("")) and "uniqueItems" in message
    assert "strin" in generate({"type": "json", "value": {"type": "strin"}})
    message = generate({"type": "regex", "value": "a[b"})
    assert message.startswith(INVALID_REGEX.format("")) and "unclosed" in message
    bad_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"not": {}}}}
    body = {"messages": MESSAGES, "response_format": bad_format}
    assert "not" in refused(url, "/v1/chat/completions", body)


def test_tool_errors_get_422(url):
    body = {"messages": MESSAGES, "tools": TOOLS, "tool_choice": {"function": {"name": "nope"}}}
    assert refused(url, "/v1/chat/completions", body) == TOOL_NOT_FOUND.format("nope")
    body = {"messages": MESSAGES, "tools": TOOLS, "response_format": {"type": "json_object"}}
    assert refused(url, "/v1/chat/completions", body) == TOOLS_AND_FORMAT
    unsupported = {**WEATHER, "function": {**WEATHER["function"], "parameters": {"not": {}}}}
    body = {"messages": MESSAGES, "tools": [unsupported]}
    assert "not" in refused(url, "/v1/chat/completions", body)


@pytest.mark.parametrize("sampling", [{"temperature": 0}, {"temperature": 1.0, "seed": 1}])
@pytest.mark.parametrize("question", ["Hello there!", "What is the weather like in Paris?"])
def test_auto_streamed_matches_not_streamed(url, question, sampling):
    """Whatever the model picks (a call, or words through `no_tool`, whole or cut short), the
    stream adds up to the answer given whole (greedy or one seed: the same generation)."""
    client = InferenceClient(model=url)
    messages = [{"role": "user", "content": question}]
    options = dict(max_tokens=150, tools=TOOLS, tool_choice="auto", **sampling)
    whole = client.chat_completion(messages, **options).choices[0]
    chunks = list(client.chat_completion(messages, stream=True, **options))
    assert chunks[-1].choices[0].finish_reason == whole.finish_reason
    if whole.message.tool_calls:
        pieces = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices[0].delta.tool_calls]
        assert pieces[0].function.name == whole.message.tool_calls[0].function.name
        assert "".join(p.function.arguments for p in pieces) == (
            whole.message.tool_calls[0].function.arguments
        )
    else:
        words = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert words == whole.message.content
        assert not words.startswith('{"function"')  # the words, not the JSON around them
        assert len([c for c in chunks if c.choices[0].delta.content]) > 1 or len(words) < 8
