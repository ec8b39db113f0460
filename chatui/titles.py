"""Conversation titles: a 2-4 word summary from the task model, or the first five words.

chat-ui asks its task model after the first answer; with ``LLM_SUMMARIZATION=false`` (or when the
task model fails or answers nothing usable) the title is the first five words of the message.

Must not import Django or the database layer: the caller stores the title.
"""

from __future__ import annotations

import logging
import re

import httpx

from chatui.endpoints import EndpointError, EndpointHealth, generate_text
from chatui.models_config import AppConfig
from chatui.prompting import ChatMessage

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "New Chat"
MAX_TITLE_LENGTH = 100
TITLE_MAX_NEW_TOKENS = 16
_EXCERPT_CHARS = 1000

TITLE_SYSTEM_PROMPT = (
    "You write titles for conversations. Reply with a title of two to four words that says "
    "what the user asked about. Do not answer the question. Reply with the title only."
)
TITLE_REQUEST = "Write a two to four word title for this conversation.\n\nUser: {user}\n{answer}"


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
    answer_line = f"Assistant: {answer[:_EXCERPT_CHARS]}" if answer else ""
    return [
        ChatMessage("system", TITLE_SYSTEM_PROMPT),
        ChatMessage(
            "user",
            TITLE_REQUEST.format(user=user_message[:_EXCERPT_CHARS], answer=answer_line).strip(),
        ),
    ]


async def generate_title(
    config: AppConfig,
    user_message: str,
    answer: str = "",
    *,
    client: httpx.AsyncClient | None = None,
    health: EndpointHealth | None = None,
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
            health=health,
        )
    except EndpointError as exc:
        logger.info("Title generation failed (%s); using the first words", exc.message)
        return first_words(user_message)
    return clean_title(raw) or first_words(user_message)
