"""What the write services share: the check that a model id is one of the listed models.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

from typing import Any

from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.validation import describe

UNKNOWN_MODEL = "Unknown model: {model}."


SYSTEM_PROMPT_INVALID = "The system prompt must be a string."


def listed_model_id(model: Any) -> str:
    config = get_chat_config()
    listed = {m.id for m in config.listed_models}
    if not isinstance(model, str) or model not in listed:
        raise ChatError(UNKNOWN_MODEL.format(model=describe(model)))
    return model
