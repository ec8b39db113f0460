"""Conversation titles: a 2-4 word summary from the task model, or the first five words.

chat-ui asks its task model after the first answer; with ``LLM_SUMMARIZATION=false`` (or when the
task model fails or answers nothing usable) the title is the first five words of the message.

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

TITLE_SYSTEM_PROMPT = (
    "You write titles for conversations. Given the user's message and the start of the reply, "
    "name the topic in two to four words. Do not answer the message. Reply with the title only."
)
TITLE_TURN = "Message: {user}\nReply: {answer}"
# Worked examples, as chat-ui gives its task model: they fix the format for small models.
TITLE_EXAMPLES = (
    (
        "Who is the president of Gabon?",
        "The current president of Gabon is Brice Oligui Nguema.",
        "President of Gabon",
    ),
    (
        "Write a Python function that reverses a string.",
        "def reverse(text):\n    return text[::-1]",
        "Reverse a string in Python",
    ),
    ("hi, how are you today?", "I'm doing well, thanks for asking!", "Friendly greeting"),
)


def first_words(text: str, count: int = 5) -> str:
    """The first ``count`` words of ``text`` (whitespace collapsed), at most 100 characters."""
    words = text.split()
    if not words:
        return DEFAULT_TITLE
    title = " ".join(words[:count])
    return title[:MAX_TITLE_LENGTH].rstrip()


def clean_title(raw: str) -> str:
    """The title in a model's answer: first line, no label, quotes or trailing period."""
    line = next((ln.strip() for ln in raw.splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:\*\*)?title(?:\*\*)?\s*:\s*", "", line, flags=re.IGNORECASE)
    previous = None
    while line != previous:  # '"Title".' -> 'Title'
        previous = line
        line = line.strip(" \t\"'`*#_").rstrip(".!,;:")
    return line[:MAX_TITLE_LENGTH].rstrip()


def _request(user_message: str, answer: str) -> list[ChatMessage]:
    messages = [ChatMessage("system", TITLE_SYSTEM_PROMPT)]
    for example_user, example_answer, title in TITLE_EXAMPLES:
        messages.append(
            ChatMessage("user", TITLE_TURN.format(user=example_user, answer=example_answer))
        )
        messages.append(ChatMessage("assistant", title))
    turn = TITLE_TURN.format(user=user_message[:_EXCERPT_CHARS], answer=answer[:_EXCERPT_CHARS])
    messages.append(ChatMessage("user", turn))
    return messages


async def generate_title(
    config: AppConfig,
    user_message: str,
    answer: str = "",
    *,
    client: httpx.AsyncClient | None = None,
    state: EndpointState | None = None,
) -> str:
    """A title for a conversation that starts with ``user_message`` (answered by ``answer``)."""
    if not config.llm_summarization or not user_message.strip():
        return first_words(user_message)
    try:
        raw = await generate_text(
            config.task_model,
            _request(user_message, answer),
            TITLE_MAX_NEW_TOKENS,
            client=client,
            state=state,
        )
    except EndpointError as exc:
        logger.info("Title generation failed (%s); using the first words", exc.message)
        return first_words(user_message)
    title = clean_title(raw)
    if not title or len(title.split()) > MAX_TITLE_WORDS:
        return first_words(user_message)
    return title
