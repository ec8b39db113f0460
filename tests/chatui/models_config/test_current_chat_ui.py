"""A `.env.local` written from chat-ui's current documentation loads unchanged: the models
come from the server's /models (with its metadata), every documented override key is read
(none dropped, none warned about), and an answer goes out as the file says. Unknown keys
still warn."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chatui.chat_config import get_chat_config, set_chat_config
from chatui.endpoints.openai import fetch_text, list_models
from chatui.models_config import load_app_config
from config.env import parse_env_text
from tests.chatui.fake_endpoints import FakeOpenAI, Script
from tests.chatui.helpers import connect, db, make_owner, new_conversation, send_and_finish

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "env" / "chat-ui-current.env.local"
PREPROMPT = "You are the house assistant. Answer in English."
LLAMA, QWEN, R1 = (
    "meta-llama/Llama-3.3-70B-Instruct",
    "Qwen/Qwen3-VL-8B-Instruct",
    "deepseek-ai/DeepSeek-R1",
)
# The server's listing, with the metadata chat-ui reads from the HF router's /models.
LISTING = [
    {"id": LLAMA, "object": "model",
     "providers": [{"provider": "a", "supports_tools": False, "context_length": 131072},
                   {"provider": "b", "supports_tools": True}]},
    {"id": QWEN, "object": "model", "description": "Qwen3 VL",
     "architecture": {"input_modalities": ["text", "image"]},
     "providers": [{"provider": "a", "context_length": 32768}]},
    {"id": R1, "object": "model", "max_model_len": 65536},
    {"id": "internal/router-alias", "object": "model"},
    {"id": "internal/summarizer", "object": "model"},
]  # fmt: skip


class Preprompt(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PREPROMPT.encode()
        self.send_response(200 if self.path == "/preprompt.txt" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAI, str]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Preprompt)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    with FakeOpenAI(Script(tokens=["Bom", " dia"]), models=LISTING) as openai:
        yield openai, f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def load_fixture(openai: FakeOpenAI, preprompt_host: str):
    text = FIXTURE.read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:9", openai.url.removeprefix("http://"))
    text = text.replace("127.0.0.1:7", preprompt_host)
    return load_app_config(parse_env_text(text), list_models=list_models, fetch_text=fetch_text)


def test_the_current_docs_file_loads_with_every_key_read(servers, caplog) -> None:
    openai, preprompt_host = servers
    with caplog.at_level(logging.WARNING, logger="chatui"):
        config = load_fixture(openai, preprompt_host)
    assert caplog.records == []  # no key dropped, none unknown, every URL read
    assert openai.requests[0].headers["authorization"] == "Bearer hf_current_docs_key"
    assert [m.id for m in config.models] == [m["id"] for m in LISTING]
    assert [m.id for m in config.listed_models] == [LLAMA, QWEN, R1, "internal/summarizer"]
    llama, qwen, r1, alias, summarizer = config.models
    assert (llama.display_name, llama.description) == ("Llama 3.3 70B", "A strong general model.")
    assert llama.logo_url == "https://huggingface.co/api/avatars/meta-llama"
    assert (llama.website_url, llama.model_url) == (
        "https://llama.meta.com",
        "https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct",
    )
    assert llama.preprompt == PREPROMPT and llama.system_role_supported is False
    assert llama.context_length == 8192  # the override beats the listing's 131072
    assert llama.parameters == {
        "temperature": 0.6, "top_p": 0.9, "top_k": 40, "max_new_tokens": 1024,
        "frequency_penalty": 0.1, "presence_penalty": 0.1, "stop": ["<|eot_id|>"],
    }  # fmt: skip
    assert llama.prompt_examples == (("Plan a trip", "Plan a three-day trip to Lisbon."),)
    assert (qwen.multimodal, qwen.multimodal_accepted_mimetypes) == (
        True,
        ("image/png", "image/jpeg"),
    )
    assert (qwen.context_length, qwen.description) == (32768, "Qwen3 VL")  # from /models
    assert (r1.display_name, r1.supports_reasoning, r1.context_length) == (
        "DeepSeek R1",
        True,
        65536,
    )
    assert (r1.reasoning.type, r1.reasoning.begin_token, r1.reasoning.end_token) == (
        "tokens",
        "<think>",
        "</think>",
    )
    assert alias.unlisted and alias.reasoning.regex == r"Final answer: ([\s\S]*)"
    assert summarizer.reasoning.type == "summarize"
    assert config.task_model is llama
    assert (config.app_name, config.llm_summarization) == ("Current Chat", False)
    public = llama.to_public_dict()
    assert public["contextLength"] == 8192 and "prepromptUrl" not in public


@pytest.mark.django_db(transaction=True)
async def test_it_answers_as_the_file_says(servers) -> None:
    openai, preprompt_host = servers
    original = get_chat_config()
    set_chat_config(load_fixture(openai, preprompt_host))
    try:
        owner = await db(make_owner)()
        cid = await db(new_conversation)(owner, LLAMA)
        socket = await connect(owner, cid)
        events = await send_and_finish(socket, "Good morning in Portuguese?")
        await socket.disconnect()
    finally:
        set_chat_config(original)
    assert events[-1]["message"]["content"] == "Bom dia"
    body = openai.generation_requests[-1].body
    assert body["messages"] == [  # no system role: the prompt from prepromptUrl goes first
        {"role": "user", "content": f"{PREPROMPT}\nGood morning in Portuguese?"}
    ]
    assert (body["model"], body["max_tokens"], body["temperature"]) == (LLAMA, 1024, 0.6)


def test_unknown_keys_still_warn(caplog) -> None:
    entry = {"name": "m", "supportTools": True, "contextLength": 4096, "supportsTools": True}
    with caplog.at_level(logging.WARNING, logger="chatui"):
        (model,) = load_app_config({"MODELS": json.dumps([entry])}).models
    assert model.context_length == 4096
    assert [r.getMessage() for r in caplog.records] == [
        'MODELS[0] ("m"): ignoring unknown keys supportTools'  # the typo, not supportsTools
    ]
