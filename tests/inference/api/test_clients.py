"""The ways people consume TGI, unchanged, against this server (docs/consuming-tgi)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient
from huggingface_hub.errors import ValidationError as HubValidationError

from inference.api import validation as v

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "gradio_chat.py"
MESSAGES = [{"role": "user", "content": "What is Deep Learning?"}]

pytestmark = pytest.mark.usefixtures("hub_client")


# ------------------------------------------------------------------- InferenceClient (sync)


def test_text_generation_returns_the_text(url):
    client = InferenceClient(model=url)
    text = client.text_generation("Write a code for snake game", max_new_tokens=8)
    assert isinstance(text, str) and text


def test_text_generation_stream_yields_token_texts(url):
    client = InferenceClient(model=url)
    tokens = list(client.text_generation("How do you make cheese?", max_new_tokens=12, stream=True))
    assert 1 <= len(tokens) <= 12
    assert all(isinstance(t, str) for t in tokens)
    full = client.text_generation("How do you make cheese?", max_new_tokens=12)
    assert "".join(tokens).removesuffix("<|im_end|>") == full


def test_text_generation_details(url):
    client = InferenceClient(model=url)
    output = client.text_generation("Meaning of life is", max_new_tokens=5, details=True)
    assert output.details.generated_tokens == len(output.details.tokens)
    assert output.details.finish_reason in ("length", "eos_token")
    assert output.details.prefill == []
    assert "".join(t.text for t in output.details.tokens if not t.special) == output.generated_text


def test_text_generation_stream_with_details(url):
    client = InferenceClient(model=url)
    outputs = list(
        client.text_generation("Meaning of life is", max_new_tokens=5, stream=True, details=True)
    )
    first, last = outputs[0], outputs[-1]
    assert first.token.text is not None and first.generated_text is None and first.details is None
    assert last.details.generated_tokens == len(outputs)
    assert last.generated_text == "".join(o.token.text for o in outputs if not o.token.special)


def test_validation_errors_surface_as_hub_validation_errors(url):
    client = InferenceClient(model=url)
    with pytest.raises(HubValidationError, match="`top_k` must be strictly positive"):
        client.text_generation("Hi", max_new_tokens=2, top_k=-1)


def test_chat_completion(url):
    client = InferenceClient(model=url)
    output = client.chat_completion(MESSAGES, max_tokens=8)
    choice = output.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("length", "stop")
    assert output.usage.completion_tokens <= 8
    assert output.usage.total_tokens == output.usage.prompt_tokens + output.usage.completion_tokens


def test_chat_completion_stream(url):
    client = InferenceClient(model=url)
    chunks = list(client.chat_completion(MESSAGES, max_tokens=8, stream=True, seed=3))
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    again = client.chat_completion(MESSAGES, max_tokens=8, seed=3)
    assert text == again.choices[0].message.content


# ------------------------------------------------------------------ AsyncInferenceClient


async def test_async_client_text_generation_and_stream(url):
    client = AsyncInferenceClient(model=url)
    text = await client.text_generation("Hello", max_new_tokens=6)
    tokens = [t async for t in await client.text_generation("Hello", max_new_tokens=6, stream=True)]
    assert "".join(tokens).removesuffix("<|im_end|>") == text
    output = await client.text_generation("Hello", max_new_tokens=6, details=True)
    assert output.generated_text == text
    streamed = [
        o
        async for o in await client.text_generation(
            "Hello", max_new_tokens=6, stream=True, details=True
        )
    ]
    assert streamed[-1].details.generated_tokens == output.details.generated_tokens


async def test_async_client_chat_completion(url):
    client = AsyncInferenceClient(model=url)
    output = await client.chat_completion(MESSAGES, max_tokens=6, temperature=0)
    chunks = [
        c
        async for c in await client.chat_completion(
            MESSAGES, max_tokens=6, temperature=0, stream=True
        )
    ]
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks)
        == output.choices[0].message.content
    )


async def test_async_client_validation_error(url):
    client = AsyncInferenceClient(model=url)
    with pytest.raises(HubValidationError, match="`top_k` must be strictly positive"):
        await client.text_generation("Hi", max_new_tokens=2, top_k=-1)


# --------------------------------------------------------------------------- OpenAI's SDK


def test_openai_sdk_chat_and_stream(url):
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="unused")
    completion = client.chat.completions.create(
        model="tgi", messages=MESSAGES, max_tokens=6, temperature=0
    )
    stream = client.chat.completions.create(
        model="tgi",
        messages=MESSAGES,
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens == completion.usage.completion_tokens
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == completion.choices[0].message.content
    assert completion.model == "tgi"
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny-random-llama"]


def test_openai_sdk_completions(url):
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="unused")
    completion = client.completions.create(
        model="tgi", prompt="Once upon a time", max_tokens=5, temperature=0
    )
    chunks = list(
        client.completions.create(
            model="tgi", prompt="Once upon a time", max_tokens=5, temperature=0, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in chunks) == completion.choices[0].text
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")


# ---------------------------------------------------------------------------- curl, Gradio


def test_the_readme_curl_command(url):
    result = subprocess.run(
        [
            "curl",
            "-sS",
            url + "/generate",
            "-X",
            "POST",
            "-d",
            '{"inputs":"What is Deep Learning?","parameters":{"max_new_tokens":20}}',
            "-H",
            "Content-Type: application/json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert isinstance(json.loads(result.stdout)["generated_text"], str)


def test_the_curl_stream_command(url):
    result = subprocess.run(
        [
            "curl",
            "-sSN",
            url + "/generate_stream",
            "-X",
            "POST",
            "-d",
            '{"inputs":"What is Deep Learning?","parameters":{"max_new_tokens":5}}',
            "-H",
            "Content-Type: application/json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [
        json.loads(line[5:]) for line in result.stdout.splitlines() if line.startswith("data:")
    ]
    assert events[-1]["generated_text"] is not None


def load_gradio_example():
    spec = importlib.util.spec_from_file_location(
        "gradio_chat", ROOT / "examples" / "gradio_chat.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gradio_example_streams_growing_answers(url, monkeypatch):
    monkeypatch.setenv("TGI_URL", url)
    example = load_gradio_example()
    monkeypatch.setattr(example, "MAX_TOKENS", 8)
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
    ]
    partials = list(example.respond("Are tomatoes vegetables?", history))
    assert partials
    for shorter, longer in itertools.pairwise(partials):
        assert longer.startswith(shorter)
    assert example.to_messages("Q", history)[-1] == {"role": "user", "content": "Q"}
    assert example.to_messages("Q", history)[1]["content"] == "Hello!"


def test_gradio_example_builds_a_chat_interface():
    """In a fresh interpreter: the test process has Django's Twisted/zope imports loaded,
    which break Gradio's component introspection (nothing to do with the example)."""
    script = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('g', {str(EXAMPLE)!r}); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "print(type(m.build_demo()).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, check=True
    )
    assert result.stdout.strip() == "ChatInterface"


def test_client_validation_messages_are_tgi_constants():
    assert v.TOP_K == "`top_k` must be strictly positive"
