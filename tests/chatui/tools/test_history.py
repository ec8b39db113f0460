"""Earlier tool calls in later prompts: as tool messages on a chat route (step by step, with
the system prompt first), as text under the user's turn for prompts rendered here."""

from __future__ import annotations

from chatui.models_config import bundled_model
from chatui.prompting import ChatMessage
from chatui.tools.history import RESULTS_HEADER, as_text, chat_messages


def record(call_id: str, step: int, result: str) -> dict:
    return {"id": call_id, "name": "f", "arguments": "{}", "result": result, "step": step}


CALLS = (record("a", 0, "one"), record("b", 0, "two"), record("c", 1, "three"))
HISTORY = [
    ChatMessage("user", "Q"),
    ChatMessage("assistant", "A", tool_calls=CALLS),
    ChatMessage("user", "Q2"),
]


def test_replayed_as_tool_messages_step_by_step() -> None:
    messages = chat_messages(bundled_model(), HISTORY, "Be brief.")
    assert [m["role"] for m in messages] == [
        "system", "user", "assistant", "tool", "tool", "assistant", "tool", "assistant", "user"
    ]  # fmt: skip
    first_step = messages[2]["tool_calls"]
    assert [c["id"] for c in first_step] == ["a", "b"] and messages[2]["content"] == ""
    assert [m.get("tool_call_id") for m in messages[3:5]] == ["a", "b"]
    assert messages[6] == {"role": "tool", "tool_call_id": "c", "name": "f", "content": "three"}
    assert messages[7] == {"role": "assistant", "content": "A"}


def test_written_under_the_users_turn_for_a_text_prompt() -> None:
    turns = as_text(HISTORY)
    assert turns[0].content.startswith("Q\n\n" + RESULTS_HEADER)
    assert "- f({}) -> three" in turns[0].content
    assert [t.content for t in turns[1:]] == ["A", "Q2"]
    assert as_text([ChatMessage("user", "plain")])[0].content == "plain"
