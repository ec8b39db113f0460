"""Writes, by entity (HackSoft style): `conversations`, `messages` (the writes that start an
answer, and votes), `generations` (the bookkeeping of a running answer), `assistants`,
`user_settings`, `owners` (login transfer), `api_tokens` and `api_throttle` (personal API
tokens and the throttle of failed ones) and `chat_api` (a conversation from a request of the
chat API for scripts). `common` holds what they share.

Named `<entity>_<action>(*, ...)`. Each function validates (raising `ChatError` with one of
the messages its module defines), checks usage limits, and writes in one transaction.
Synchronous: async callers wrap them in `database_sync_to_async`. Callers use the names
re-exported here (`services.conversation_create(...)`).

Part of the domain: must not import the websocket layer (consumers, routing,
`chatui.streaming`, `chatui.layers`), views or endpoints.
"""

from __future__ import annotations

from chatui.errors import ChatError
from chatui.services.api_throttle import throttle_failure, throttle_wait_s
from chatui.services.api_tokens import (
    TOKEN_NAME_INVALID,
    TOKEN_NOT_FOUND,
    TOKENS_NEED_LOGIN,
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
)
from chatui.services.assistants import (
    ASSISTANT_DESCRIPTION_INVALID,
    ASSISTANT_NAME_INVALID,
    AVATAR_NOT_AN_IMAGE,
    STARTERS_INVALID,
    assistant_delete,
    assistant_save,
)
from chatui.services.chat_api import (
    LAST_NOT_USER,
    MESSAGES_EMPTY,
    ROLES_OUT_OF_ORDER,
    ChatTurn,
    api_chat_continue,
    api_chat_start,
)
from chatui.services.common import SYSTEM_PROMPT_INVALID, UNKNOWN_MODEL, listed_model_id
from chatui.services.conversations import (
    ASSISTANT_MODEL_GONE,
    EMPTY_SHARE,
    SHARE_LEAF_UNKNOWN,
    TITLE_INVALID,
    conversation_create,
    conversation_delete,
    conversation_delete_all,
    conversation_set_title,
    conversation_share,
    conversation_update,
    shared_continue,
)
from chatui.services.generations import (
    message_finish,
    message_reap_stale,
    message_save_partial,
    message_set_tool_calls,
)
from chatui.services.messages import (
    ALREADY_GENERATING,
    INVALID_PARENT,
    NOT_A_USER_MESSAGE,
    NOT_AN_ANSWER,
    NOT_REGENERABLE,
    NOT_SCORABLE,
    SCORE_INVALID,
    GenerationRequest,
    message_continue,
    message_edit,
    message_regenerate,
    message_send,
    message_set_score,
)
from chatui.services.owners import owner_transfer
from chatui.services.user_settings import CUSTOM_PROMPTS_INVALID, THEME_INVALID, settings_update

__all__ = [
    "ALREADY_GENERATING",
    "ASSISTANT_DESCRIPTION_INVALID",
    "ASSISTANT_MODEL_GONE",
    "ASSISTANT_NAME_INVALID",
    "AVATAR_NOT_AN_IMAGE",
    "CUSTOM_PROMPTS_INVALID",
    "EMPTY_SHARE",
    "INVALID_PARENT",
    "LAST_NOT_USER",
    "MESSAGES_EMPTY",
    "NOT_AN_ANSWER",
    "NOT_A_USER_MESSAGE",
    "NOT_REGENERABLE",
    "NOT_SCORABLE",
    "ROLES_OUT_OF_ORDER",
    "SCORE_INVALID",
    "SHARE_LEAF_UNKNOWN",
    "STARTERS_INVALID",
    "SYSTEM_PROMPT_INVALID",
    "THEME_INVALID",
    "TITLE_INVALID",
    "TOKENS_NEED_LOGIN",
    "TOKEN_NAME_INVALID",
    "TOKEN_NOT_FOUND",
    "UNKNOWN_MODEL",
    "ChatError",
    "ChatTurn",
    "GenerationRequest",
    "api_chat_continue",
    "api_chat_start",
    "api_token_authenticate",
    "api_token_create",
    "api_token_revoke",
    "assistant_delete",
    "assistant_save",
    "conversation_create",
    "conversation_delete",
    "conversation_delete_all",
    "conversation_set_title",
    "conversation_share",
    "conversation_update",
    "listed_model_id",
    "message_continue",
    "message_edit",
    "message_finish",
    "message_reap_stale",
    "message_regenerate",
    "message_save_partial",
    "message_send",
    "message_set_score",
    "message_set_tool_calls",
    "owner_transfer",
    "settings_update",
    "shared_continue",
    "throttle_failure",
    "throttle_wait_s",
]
