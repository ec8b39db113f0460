"""Earlier tool calls in the history a model reads, so that regenerate, continue and edit
replay them: for a chat route, each answer's calls come back as the assistant's `tool_calls`
and one `role: "tool"` message per result (by `tool_call_id`), step by step, before the
answer's text; for a prompt rendered here (no tool messages), the results are written under
the user's turn, as text.

Must not import Django, httpx or the websocket layer.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby
from typing import Any

from chatui.prompting import ChatMessage, build_chat_messages

RESULTS_HEADER = "Results of the tools you called (use them to answer):"


def assistant_calls(calls: list[dict[str, str]]) -> dict[str, Any]:
    """The assistant message that asks for `calls` (`{id, name, arguments}`)."""
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"] or "{}"},
            }
            for c in calls
        ],
    }


def tool_message(record: dict[str, Any]) -> dict[str, Any]:
    """One call's result as the model reads it back."""
    return {
        "role": "tool",
        "tool_call_id": record["id"],
        "name": record["name"],
        "content": record.get("result") or "",
    }


def replay(records: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored calls as the messages that made them: per step, the call, then the results."""
    messages: list[dict[str, Any]] = []
    for _, step in groupby(records, key=lambda r: r.get("step", 0)):
        calls = list(step)
        messages.append(assistant_calls(calls))
        messages.extend(tool_message(r) for r in calls)
    return messages


def chat_messages(
    model: Any, messages: list[ChatMessage], preprompt: str | None
) -> list[dict[str, Any]]:
    """`build_chat_messages` with each answer's earlier calls replayed before its text."""
    built = build_chat_messages(model, messages, preprompt)
    turns = [m for m in messages if m.role != "system"]
    offset = len(built) - len(turns)
    result = built[:offset]
    for turn, entry in zip(turns, built[offset:], strict=True):
        if turn.role == "assistant" and turn.tool_calls:
            result.extend(replay(turn.tool_calls))
        result.append(entry)
    return result


def as_text(messages: list[ChatMessage]) -> list[ChatMessage]:
    """For prompts rendered here: each answer's tool results written under the user turn
    before it."""
    result: list[ChatMessage] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls and result:
            lines = [
                f"- {r['name']}({r['arguments']}) -> {r['result']}" for r in message.tool_calls
            ]
            note = "\n\n" + RESULTS_HEADER + "\n" + "\n".join(lines)
            last = result[-1]
            result[-1] = replace(last, content=last.content + note)
        result.append(message)
    return result
