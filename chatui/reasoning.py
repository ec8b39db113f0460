"""A reasoning model's answer: its reasoning told apart from the answer, stored, and left out
of later prompts.

An answer is stored as one text: an optional leading reasoning block in a single canonical
form, ``<think seconds="2.5">...</think>``, then the answer. Every source is rewritten to it
while the answer streams (`ReasoningStream`): the ``reasoning_content``/``reasoning`` deltas of
OpenAI-compatible servers (already written as ``<think>`` by `chatui.endpoints.openai`), a
leading ``<think>`` block, and chat-ui's ``reasoning`` setting (custom ``tokens``, a
``regex`` that picks the answer out, or ``summarize``: all of it is reasoning and the task
model writes the answer). The page shows the block collapsed (static/chatui/blocks.js);
`strip_reasoning` leaves it out of what is sent back to the model, as chat-ui does.

Pure: must not import Django, the endpoints or the websocket layer.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from chatui.prompting import ChatMessage

if TYPE_CHECKING:
    from chatui.models_config.spec import Reasoning

OPEN, CLOSE = "<think>", "</think>"
_STORED = re.compile(r'^\s*<think(?: seconds="[\d.]+")?>([\s\S]*?)(?:</think>|$)')
SUMMARY_PROMPT = (
    "Summarize concisely all your reasoning steps and then give the final answer. Keep it "
    "short, one short paragraph at most. If the reasoning includes a code solution, include "
    "it in your short answer."
)
SUMMARY_MAX_TOKENS = 500


def strip_reasoning(text: str) -> str:
    """The answer without its leading reasoning block (what later prompts get)."""
    match = _STORED.match(text)
    return text[match.end() :].lstrip() if match else text


def split_reasoning(text: str) -> tuple[str | None, str]:
    """(the reasoning or None, the answer) of a stored answer."""
    match = _STORED.match(text)
    if not match:
        return None, text
    return match.group(1).strip(), text[match.end() :].lstrip()


def with_duration(text: str, seconds: float | None) -> str:
    """The stored text with how long the reasoning took on its opening tag."""
    if seconds is None or not text.lstrip().startswith(OPEN):
        return text
    start = text.index(OPEN)
    return f'{text[:start]}<think seconds="{seconds:.1f}">{text[start + len(OPEN) :]}'


def _held_suffix(text: str, markers: tuple[str, ...]) -> int:
    """The length of the longest end of `text` that may be the start of a marker."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if marker.startswith(text[-size:]):
                longest = size
                break
    return longest


class ReasoningStream:
    """Rewrites an answer's text, piece by piece, into the canonical form (see the module).

    `feed` returns what may be shown now (a piece that may be the start of a marker waits for
    the next); `close` what is left at the end. `prefix` is the stored text a continued answer
    extends. `seconds` is how long the reasoning took, once it ended."""

    def __init__(self, spec: Reasoning | None, *, prefix: str = "") -> None:
        kind = spec.type if spec is not None else "tokens"
        self.spec, self.prefix, self.kind = spec, prefix, kind
        self.regex = spec.regex if spec is not None else ""
        begin = spec.begin_token if spec is not None and kind == "tokens" else OPEN
        end = spec.end_token if spec is not None and kind == "tokens" else CLOSE
        self.begins = tuple(dict.fromkeys((begin, OPEN))) if begin else (OPEN,)
        self.ends = tuple(dict.fromkeys((end, CLOSE)))
        self.buffer = ""
        self.started_at: float | None = None
        self.seconds: float | None = None
        starts_inside = kind in ("regex", "summarize") or (kind == "tokens" and not begin)
        if prefix.strip():
            is_open = prefix.lstrip().startswith("<think") and CLOSE not in prefix
            self.state = "reasoning" if is_open else "answer"
        else:
            self.state = "inside" if starts_inside else "start"

    @property
    def needs_summary(self) -> bool:
        return self.kind == "summarize"

    def _enter(self) -> str:
        self.state, self.started_at = "reasoning", time.monotonic()
        return OPEN

    def _leave(self) -> str:
        self.state = "answer"
        if self.started_at is not None:
            self.seconds = time.monotonic() - self.started_at
        return CLOSE

    def feed(self, piece: str) -> str:
        self.buffer += piece
        out = ""
        if self.state == "inside":  # the answer opens inside the reasoning
            text = self.buffer.lstrip()
            if OPEN.startswith(text):  # the server may still write its own <think>
                return ""
            self.buffer = text.removeprefix(OPEN)
            out += self._enter()
        if self.state == "start":
            text = self.buffer.lstrip()
            begin = next((b for b in self.begins if text.startswith(b)), None)
            if begin is not None:
                self.buffer = text[len(begin) :]
                out += self._enter()
            elif any(b.startswith(text) for b in self.begins):
                return out
            else:
                self.state = "answer"
        if self.state == "reasoning" and self.kind == "tokens":
            found = [(self.buffer.find(e), e) for e in self.ends if e in self.buffer]
            if found:
                index, end = min(found)
                out += self.buffer[:index] + self._leave()
                self.buffer = self.buffer[index + len(end) :]
            else:
                held = _held_suffix(self.buffer, self.ends)
                out += self.buffer[: len(self.buffer) - held]
                self.buffer = self.buffer[len(self.buffer) - held :]
                return out
        if self.state == "reasoning":  # regex, summarize: everything until the end
            out, self.buffer = out + self.buffer, ""
            return out
        out, self.buffer = out + self.buffer, ""
        return out

    def close(self) -> str:
        """The rest at the end of the stream: a reasoning block still open is closed."""
        out, self.buffer = self.buffer, ""
        if self.state == "inside":
            out = self._enter() + out.lstrip().removeprefix(OPEN)
        if self.state == "reasoning":
            out += self._leave()
        return out

    def final_text(self, raw: str) -> str:
        """The stored form of the endpoint's final text (`raw`: a stop string stripped), with
        the regex's answer picked out, and the reasoning's duration."""
        if self.kind == "regex":
            match = re.search(self.regex, raw)
            if match is None:
                return raw  # no answer found: all of it is the answer
            answer = match.group(1) if match.re.groups else match.group(0)
            return with_duration(f"{OPEN}{raw[: match.start()]}{CLOSE}{answer}", self.seconds)
        again = ReasoningStream(self.spec, prefix=self.prefix)
        return with_duration(again.feed(raw) + again.close(), self.seconds)


def summary_messages(question: str, reasoning: str) -> list[ChatMessage]:
    """What the task model is asked for a ``summarize`` model's answer."""
    content = f"{SUMMARY_PROMPT}\n\nQuestion: {question}\n\nReasoning: {reasoning}"
    return [ChatMessage("user", content)]
