"""Conversation titles: a 2-4 word summary from the task model, or the first sentence.

As chat-ui does, the task model is asked alongside the answer, from the first message alone, so
the title shows while the answer is written. With ``LLM_SUMMARIZATION=false`` (or when the task
model fails or answers nothing usable) the title is the message's first sentence, cut at a word
boundary within ``FALLBACK_MAX_CHARS`` with an ellipsis.

Must not import Django or the database layer (the caller stores the title), nor
the websocket layer (consumers, routing, `chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import logging
import re

import httpx

from chatui.endpoints import EndpointError, EndpointState, generate_text
from chatui.models_config import AppConfig
from chatui.prompting import ChatMessage

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "New Chat"
MAX_TITLE_LENGTH = 100
TITLE_MAX_NEW_TOKENS = 16
_EXCERPT_CHARS = 500

MAX_TITLE_WORDS = 6  # longer answers are the model answering instead of summarising
FALLBACK_MAX_CHARS = 50
ELLIPSIS = "…"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\n")

TITLE_SYSTEM_PROMPT = (
    "You write titles for conversations. Given the user's first message, name its topic in two "
    "to four words. Do not answer the message. Reply with the title only."
)
TITLE_TURN = "Message: {user}"
# Worked examples, as chat-ui gives its task model: they fix the format for small models.
TITLE_EXAMPLES = (
    ("Who is the president of Gabon?", "President of Gabon"),
    ("Write a Python function that reverses a string.", "Reverse a string in Python"),
    ("hi, how are you today?", "Friendly greeting"),
)


def fallback_title(text: str) -> str:
    """The first sentence of ``text`` (whitespace collapsed); a longer one is cut at the last
    word boundary within ``FALLBACK_MAX_CHARS`` and ends with an ellipsis, so a title never
    stops mid-word and a cut one says so."""
    sentence = " ".join(_SENTENCE_END.split(text.strip(), maxsplit=1)[0].split())
    if not sentence:
        return DEFAULT_TITLE
    if len(sentence) <= FALLBACK_MAX_CHARS:
        return sentence
    room = FALLBACK_MAX_CHARS - len(ELLIPSIS)
    cut = sentence[: room + 1].rsplit(" ", 1)[0] if " " in sentence[: room + 1] else ""
    cut = (cut or sentence[:room]).rstrip(" ,;:-")
    return cut + ELLIPSIS


def clean_title(raw: str) -> str:
    """The title in a model's answer: first line, no label, quotes or trailing period."""
    line = next((ln.strip() for ln in raw.splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:\*\*)?title(?:\*\*)?\s*:\s*", "", line, flags=re.IGNORECASE)
    previous = None
    while line != previous:  # '"Title".' -> 'Title'
        previous = line
        line = line.strip(" \t\"'`*#_").rstrip(".!,;:")
    return line[:MAX_TITLE_LENGTH].rstrip()


def _request(user_message: str) -> list[ChatMessage]:
    messages = [ChatMessage("system", TITLE_SYSTEM_PROMPT)]
    for example_user, title in TITLE_EXAMPLES:
        messages.append(ChatMessage("user", TITLE_TURN.format(user=example_user)))
        messages.append(ChatMessage("assistant", title))
    messages.append(ChatMessage("user", TITLE_TURN.format(user=user_message[:_EXCERPT_CHARS])))
    return messages


async def generate_title(
    config: AppConfig,
    user_message: str,
    *,
    client: httpx.AsyncClient | None = None,
    state: EndpointState | None = None,
) -> str:
    """A title for a conversation that starts with ``user_message`` (asked before its answer
    exists, so the title shows while the answer is written)."""
    if not config.llm_summarization or not user_message.strip():
        return fallback_title(user_message)
    try:
        raw = await generate_text(
            config.task_model,
            _request(user_message),
            TITLE_MAX_NEW_TOKENS,
            client=client,
            state=state,
        )
    except EndpointError as exc:
        logger.info("Title generation failed (%s); using the first sentence", exc.message)
        return fallback_title(user_message)
    title = clean_title(raw)
    if not title or len(title.split()) > MAX_TITLE_WORDS:
        return fallback_title(user_message)
    return title
