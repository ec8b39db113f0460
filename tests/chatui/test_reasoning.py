"""Reasoning: every source (vLLM's reasoning deltas, a leading <think>, chat-ui's `tokens`,
`regex` and `summarize` settings) streams and is stored as one leading block with its
duration, and is left out of what later turns send back to the model."""

from __future__ import annotations

import json
import re

import pytest

from chatui.models_config import ConfigError, load_app_config
from chatui.models_config.spec import Reasoning
from chatui.reasoning import ReasoningStream, split_reasoning, strip_reasoning
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import (
    MODEL_A,
    connect,
    db,
    make_owner,
    merge_tokens,
    new_conversation,
    send_and_finish,
)

STORED = re.compile(r'^<think seconds="\d+\.\d">(.*)</think>(.*)$', re.S)


def reasoning(**spec: str) -> Reasoning:
    return Reasoning.model_validate(spec, context={})


def rewrite(spec: Reasoning | None, text: str, cut: int | None = None) -> tuple[str, str]:
    """(what streams, what is stored) for `text` fed in two pieces cut at `cut`."""
    stream = ReasoningStream(spec)
    pieces = [text] if cut is None else [text[:cut], text[cut:]]
    shown = "".join(stream.feed(p) for p in pieces) + stream.close()
    return shown, stream.final_text(text)


CUSTOM = {"type": "tokens", "beginToken": "<|begin_of_thought|>", "endToken": "<|end_of_thought|>"}


@pytest.mark.parametrize(
    ("spec", "text", "shown", "stored"),
    [
        (None, "<think>Hmm.</think>Yes.", "<think>Hmm.</think>Yes.", ("Hmm.", "Yes.")),
        (None, "No thoughts <b>here</b>", "No thoughts <b>here</b>", None),
        (None, "<b>bold</b>", "<b>bold</b>", None),
        (CUSTOM, "<|begin_of_thought|>Hmm<|end_of_thought|>Yes", "<think>Hmm</think>Yes",
         ("Hmm", "Yes")),
        ({"type": "tokens", "beginToken": "", "endToken": "[/THINK]"}, "Hmm[/THINK]Yes",
         "<think>Hmm</think>Yes", ("Hmm", "Yes")),
        ({"type": "regex", "regex": r"Answer: (.*)"}, "Long thought. Answer: 42",
         "<think>Long thought. Answer: 42</think>", ("Long thought.", "42")),
        ({"type": "regex", "regex": r"Answer: (.*)"}, "no match", "<think>no match</think>",
         None),
        ({"type": "summarize"}, "All of it", "<think>All of it</think>", ("All of it", "")),
    ],
)  # fmt: skip
def test_every_form_streams_and_is_stored_as_one_block(spec, text, shown, stored) -> None:
    spec = reasoning(**spec) if spec else None
    for cut in (None, *range(1, len(text))):  # a marker split anywhere across two pieces
        streamed, final = rewrite(spec, text, cut)
        assert streamed == shown, cut
        if stored is None:
            assert final == text
        else:
            assert STORED.match(final), final
            assert split_reasoning(final) == stored


def test_continuing_an_answer_keeps_its_state_and_prompts_leave_reasoning_out() -> None:
    assert ReasoningStream(None, prefix="<think>half").feed(" more</think>ok") == (
        " more</think>ok"
    )
    assert ReasoningStream(None, prefix="<think>a</think>b").feed("<think>x") == "<think>x"
    assert strip_reasoning('<think seconds="1.5">secret plan</think>\n\nThe answer.') == (
        "The answer."
    )
    assert strip_reasoning("<think>still thinking") == ""
    assert strip_reasoning("Plain answer") == "Plain answer"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "guess"}, "\"reasoning.type\" must be 'tokens', 'regex' or 'summarize'"),
        ({"type": "tokens"}, '"reasoning.endToken" must be a non-empty string'),
        ({"type": "regex", "regex": "("}, '"reasoning.regex" must be a regular expression'),
        ("yes", '"reasoning" must be an object with type'),
    ],
)
def test_bad_reasoning_settings_name_the_field(spec, message) -> None:
    entry = {"name": "m", "reasoning": spec}
    with pytest.raises(ConfigError) as error:
        load_app_config({"MODELS": json.dumps([entry])})
    assert message in str(error.value)


@pytest.fixture
def reasoners(endpoints):
    """`deltas`: an OpenAI model whose server streams reasoning deltas; `custom`: a TGI model
    with its own tokens; `summarizer`: one whose whole output is summarized by model A."""
    models = json.loads(endpoints.env()["MODELS"])
    models += [
        {"id": "deltas", "name": "org/deltas", "supportsReasoning": True,
         "endpoints": [{"type": "openai", "baseURL": endpoints.openai.base_url}]},
        {"id": "custom", "name": "org/custom", "reasoning": CUSTOM,
         "endpoints": [{"type": "tgi", "url": endpoints.tgi.url}]},
        {"id": "summarizer", "name": "org/summarizer", "reasoning": {"type": "summarize"},
         "endpoints": [{"type": "openai", "baseURL": endpoints.openai.base_url}]},
    ]  # fmt: skip
    endpoints.configure(MODELS=json.dumps(models), LLM_SUMMARIZATION="false", TASK_MODEL=MODEL_A)
    return endpoints


@pytest.mark.django_db(transaction=True)
async def test_reasoning_deltas_stream_are_stored_and_are_not_sent_back(reasoners):
    reasoners.openai.queue(Script(reasoning=["Capital", " of France"], tokens=["Paris", "."]))
    reasoners.openai.queue(Script(tokens=["Lyon."]))
    owner = await db(make_owner)()
    cid = await db(new_conversation)(owner, "deltas")
    socket = await connect(owner, cid)
    events = await send_and_finish(socket, "Capital of France?")
    final = events[-1]["message"]
    assert merge_tokens("", events, final["id"]) == "<think>Capital of France</think>Paris."
    assert STORED.match(final["content"])
    assert split_reasoning(final["content"]) == ("Capital of France", "Paris.")
    events = await send_and_finish(socket, "And the second city?", parent_id=final["id"])
    await socket.disconnect()
    sent = reasoners.openai.generation_requests[-1].body["messages"]
    assert [m["content"] for m in sent] == ["Capital of France?", "Paris.", "And the second city?"]


@pytest.mark.django_db(transaction=True)
async def test_custom_tokens_and_summarize(reasoners):
    reasoners.tgi.queue(
        Script(tokens=["<|begin_of", "_thought|>", "Hmm", "<|end_of_thought|>", "Yes"])
    )
    owner = await db(make_owner)()
    cid = await db(new_conversation)(owner, "custom")
    socket = await connect(owner, cid)
    events = await send_and_finish(socket, "Well?")
    await socket.disconnect()
    assert split_reasoning(events[-1]["message"]["content"]) == ("Hmm", "Yes")

    reasoners.openai.queue(Script(tokens=["Step 1.", " Step 2."]))
    reasoners.tgi.queue(Script(tokens=["In", " short: 2."]))  # model A, the task model
    cid = await db(new_conversation)(owner, "summarizer")
    socket = await connect(owner, cid)
    events = await send_and_finish(socket, "Count")
    await socket.disconnect()
    final = events[-1]["message"]["content"]
    assert split_reasoning(final) == ("Step 1. Step 2.", "In short: 2.")
    assert merge_tokens("", events, events[-1]["message"]["id"]).endswith("</think>In short: 2.")
    summary_prompt = reasoners.tgi.generation_requests[-1].body["inputs"]
    assert "Question: Count" in summary_prompt and "Reasoning: Step 1. Step 2." in summary_prompt
