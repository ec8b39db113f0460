"""A Gradio chat page that streams answers from a TGI-compatible server.

    TGI_URL=http://127.0.0.1:8080 .venv/bin/python examples/gradio_chat.py

`respond(message, history)` is the whole integration: it sends the conversation to the
server's `/v1/chat/completions` (the server applies the model's chat template) and yields the
answer as it grows, which is how `gr.ChatInterface` streams. Importing this file starts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from huggingface_hub import InferenceClient

DEFAULT_URL = "http://127.0.0.1:8080"
MAX_TOKENS = 256
EXAMPLES = ["Are tomatoes vegetables?", "What is Deep Learning?"]


def make_client() -> InferenceClient:
    return InferenceClient(model=os.environ.get("TGI_URL", DEFAULT_URL))


def _text(content: Any) -> str:
    """A history entry's content as text (Gradio may hand over a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, list | tuple):
        return "".join(_text(part) for part in content)
    return ""


def to_messages(message: str, history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Gradio's messages-format history plus the new message, as chat-completion messages."""
    messages = [
        {"role": turn["role"], "content": _text(turn.get("content"))}
        for turn in history
        if turn.get("role") in ("user", "assistant", "system")
    ]
    messages.append({"role": "user", "content": message})
    return messages


def respond(message: str, history: list[dict[str, Any]]) -> Iterator[str]:
    """Stream the assistant's answer, yielding the whole partial answer each time."""
    partial = ""
    client = make_client()  # NOTE: keep a reference; the stream closes with its client
    stream = client.chat_completion(
        to_messages(message, history), max_tokens=MAX_TOKENS, stream=True
    )
    for chunk in stream:
        if chunk.choices:
            partial += chunk.choices[0].delta.content or ""
            yield partial


def build_demo() -> Any:
    import gradio as gr

    return gr.ChatInterface(respond, title="Gradio + TGI", examples=EXAMPLES)


if __name__ == "__main__":
    build_demo().queue().launch()
