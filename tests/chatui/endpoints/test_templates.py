"""chatui.endpoints.templates: the model's own chat template, from the server or a directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.chatui.endpoints.helpers import (
    CHATML_PROMPT,
    collect,
    fetch_chat_template,
    model,
    run,
    tgi,
)

TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


async def test_template_from_the_servers_model_directory(fake_tgi, client, tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text(TEMPLATE)
    server = fake_tgi(model_id=str(tmp_path))
    await collect(run(model(tgi(server)), client))
    await collect(run(model(tgi(server)), client))
    prompts = [r.body["inputs"] for r in server.generation_requests]
    assert prompts == ["<system>Be brief.</system><user>Hello?</user><assistant>"] * 2
    assert [r.path for r in server.requests].count("/info") == 1  # cached


async def test_template_from_the_servers_info(fake_tgi, client) -> None:
    """The server sends its template: nothing of the model need be on this machine."""
    server = fake_tgi(model_id="some-org/not-on-this-machine", chat_template=TEMPLATE)
    await collect(run(model(tgi(server)), client))
    prompt = server.generation_requests[0].body["inputs"]
    assert prompt == "<system>Be brief.</system><user>Hello?</user><assistant>"


async def test_a_burst_of_first_answers_looks_the_template_up_once(
    fake_tgi, client, tmp_path: Path
) -> None:
    (tmp_path / "chat_template.jinja").write_text(TEMPLATE)
    server = fake_tgi(model_id=str(tmp_path))
    endpoint = model(tgi(server)).endpoints[0]
    found = await asyncio.gather(*(fetch_chat_template(endpoint, client=client) for _ in range(8)))
    assert found == [TEMPLATE] * 8
    assert [r.path for r in server.requests].count("/info") == 1


async def test_template_from_a_tokenizer_directory(fake_tgi, client, tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": TEMPLATE}))
    server = fake_tgi()
    m = model(tgi(server), tokenizer=str(tmp_path))
    assert await fetch_chat_template(m.endpoints[0], tokenizer=str(tmp_path)) == TEMPLATE
    await collect(run(m, client))
    assert server.generation_requests[0].body["inputs"].startswith("<system>Be brief.")
    assert all(r.path != "/info" for r in server.requests)


async def test_unknown_model_falls_back_to_chatml(fake_tgi, client) -> None:
    server = fake_tgi(model_id="some-org/not-on-this-machine")
    await collect(run(model(tgi(server)), client))
    assert server.generation_requests[0].body["inputs"] == CHATML_PROMPT
