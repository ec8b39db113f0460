"""USAGE_LIMITS and MESSAGES_BEFORE_LOGIN: checks run by services before a write.

Each check raises `ChatError` with one of the messages below (tests import them). USAGE_LIMITS
applies to everyone, as in chat-ui; anonymous visitors also get ANONYMOUS_DEFAULTS for each
limit USAGE_LIMITS leaves unset, so an open instance is not a free 1 MB-per-message,
unmetered endpoint. A limit set to 0 is not enforced (anonymous default included). Reads only;
must not write.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import Conversation, Message
from chatui.models_config import UsageLimits

# What an anonymous visitor may do when USAGE_LIMITS does not say (README: Configuration).
ANONYMOUS_DEFAULTS = UsageLimits(
    message_length=10_000, messages_per_minute=10, concurrent_generations=2
)

TOO_MANY_CONVERSATIONS = "You have reached the maximum number of conversations ({limit})."
TOO_MANY_MESSAGES = "This conversation has reached the maximum number of messages ({limit})."
MESSAGE_TOO_LONG = "Your message is too long ({length} characters; the limit is {limit})."
RATE_LIMITED = "You are sending messages too fast (limit: {limit} per minute). Try again soon."
TOO_MANY_GENERATIONS = (
    "Too many answers are being generated at once (limit: {limit}). Wait for one to finish."
)
LOGIN_REQUIRED = "Please log in to keep chatting: anonymous visitors can send {limit} messages."
EMPTY_MESSAGE = "The message is empty."


def effective_limits(*, identity: Identity, config: object) -> UsageLimits:
    """The configured USAGE_LIMITS, with ANONYMOUS_DEFAULTS filling its gaps for a visitor."""
    configured = getattr(config, "usage_limits", None) or UsageLimits()
    if not identity.is_anonymous:
        return configured
    gaps = {
        name: getattr(ANONYMOUS_DEFAULTS, name)
        for name in UsageLimits.model_fields
        if getattr(configured, name) is None
    }
    return configured.model_copy(update=gaps)


def _limit(limits: UsageLimits, name: str) -> int | None:
    value = getattr(limits, name)
    return int(value) if value else None


def check_new_conversation(*, identity: Identity, config: object) -> None:
    limit = _limit(effective_limits(identity=identity, config=config), "conversations")
    if limit and Conversation.objects.filter(identity.owner_q()).count() >= limit:
        raise ChatError(TOO_MANY_CONVERSATIONS.format(limit=limit), status=429)


def check_message_length(*, identity: Identity, content: str, config: object) -> None:
    if not content.strip():
        raise ChatError(EMPTY_MESSAGE)
    limit = _limit(effective_limits(identity=identity, config=config), "message_length")
    if limit and len(content) > limit:
        raise ChatError(MESSAGE_TOO_LONG.format(length=len(content), limit=limit))


def check_new_message(
    *, identity: Identity, conversation: Conversation, config: object, num_earlier: int = 0
) -> None:
    """Before a new user message or answer is generated in `conversation`; `num_earlier`:
    messages of an earlier exchange about to be stored with it (the chat API's history),
    which count toward the conversation's size but are no request of this minute."""
    limits = effective_limits(identity=identity, config=config)
    before_login = int(getattr(config, "messages_before_login", 0) or 0)
    own_messages = Message.objects.filter(identity.owner_q("conversation__"))
    if identity.is_anonymous and before_login:
        sent = own_messages.filter(role=Message.Role.USER).count()
        if sent >= before_login:
            raise ChatError(LOGIN_REQUIRED.format(limit=before_login), status=403)
    limit = _limit(limits, "messages")
    if limit and conversation.messages.count() + num_earlier >= limit:
        raise ChatError(TOO_MANY_MESSAGES.format(limit=limit), status=429)
    limit = _limit(limits, "messages_per_minute")
    if limit:
        since = timezone.now() - timedelta(minutes=1)
        # One assistant message per request (send, edit, regenerate): requests per minute.
        recent = own_messages.filter(role=Message.Role.ASSISTANT, created_at__gte=since).count()
        if recent >= limit:
            raise ChatError(RATE_LIMITED.format(limit=limit), status=429)
    limit = _limit(limits, "concurrent_generations")
    if limit and own_messages.filter(is_generating=True).count() >= limit:
        raise ChatError(TOO_MANY_GENERATIONS.format(limit=limit), status=429)
