"""Personal API tokens, the throttle of failed ones, and the conversation a chat API request
makes: stored hashed, bound to their owner, revoked at once; failures counted per address in
a window; the page's usage limits applied, and nothing stored when a request is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.utils import timezone

from chatui import selectors, services
from chatui.errors import ChatError
from chatui.limits import MESSAGE_TOO_LONG, RATE_LIMITED, TOO_MANY_CONVERSATIONS
from chatui.models import ApiAuthFailure, ApiToken, Conversation, Message
from chatui.services import ChatTurn
from tests.chatui.helpers import MODEL_A, make_owner

pytestmark = pytest.mark.django_db


def test_a_token_is_stored_hashed_and_authenticates_its_user_until_revoked() -> None:
    alice, bob = make_owner("tok-alice"), make_owner("tok-bob")
    token, raw = services.api_token_create(user=alice.user, name="  laptop ")
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.name == "laptop" and raw.startswith(f"ct_{stored.key_id}")
    assert raw not in {stored.digest, stored.key_id} and raw[15:] not in stored.digest

    found = services.api_token_authenticate(raw=raw)
    assert found is not None and found.user_id == alice.user.pk
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    wrongs = ["", raw[:-1], raw + "x", raw.replace("ct_", "xx_"), "ct_" + "0" * 55]
    wrongs += [raw[:-1] + ("A" if raw[-1] != "A" else "B"), raw[:20] + "\x00" + raw[21:]]
    for wrong in wrongs:
        assert services.api_token_authenticate(raw=wrong) is None

    with pytest.raises(ChatError) as refused:
        services.api_token_revoke(user=bob.user, token_id=token.pk)  # not bob's
    assert refused.value.status == 404 and services.api_token_authenticate(raw=raw) is not None
    services.api_token_revoke(user=alice.user, token_id=token.pk)
    assert services.api_token_authenticate(raw=raw) is None
    listed = selectors.api_token_list(user=alice.user)
    assert [t["name"] for t in listed] == ["laptop"] and listed[0]["revoked_at"]
    assert selectors.api_token_list(user=bob.user) == []

    _, second = services.api_token_create(user=alice.user, name="ci")
    alice.user.is_active = False
    alice.user.save()
    assert services.api_token_authenticate(raw=second) is None


@pytest.mark.parametrize("name", ["", "   ", "x" * 61, None, 3])
def test_a_token_needs_a_name(name: object) -> None:
    with pytest.raises(ChatError) as refused:
        services.api_token_create(user=make_owner("tok-named").user, name=name)
    assert refused.value.message == services.TOKEN_NAME_INVALID
    assert not ApiToken.objects.exists()


def test_anonymous_visitors_get_no_tokens() -> None:
    with pytest.raises(ChatError) as refused:
        services.api_token_create(user=AnonymousUser(), name="x")
    assert refused.value.status == 403 and refused.value.message == services.TOKENS_NEED_LOGIN


def test_the_admin_lists_and_revokes_tokens_but_never_shows_them() -> None:
    owner = make_owner("tok-admin-owner")
    token, raw = services.api_token_create(user=owner.user, name="leaked")
    admin = get_user_model().objects.create_superuser("tok-root", "root@example.com", "pw-1234")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/chatui/apitoken/")
    assert page.status_code == 200 and "leaked" in page.content.decode()
    detail = client.get(f"/admin/chatui/apitoken/{token.pk}/change/").content.decode()
    assert token.digest not in detail and raw not in detail
    assert client.get("/admin/chatui/apitoken/add/").status_code == 403
    action = {"action": "revoke", "_selected_action": [token.pk]}
    assert client.post("/admin/chatui/apitoken/", action).status_code == 302
    assert services.api_token_authenticate(raw=raw) is None


def test_failures_throttle_one_address_for_the_window_then_count_again() -> None:
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        services.throttle_failure(address="10.0.0.1")
    assert services.throttle_wait_s(address="10.0.0.1") == 0
    services.throttle_failure(address="10.0.0.1")
    window_s = settings.AXES_COOLOFF_TIME.total_seconds()
    assert 0 < services.throttle_wait_s(address="10.0.0.1") <= window_s
    assert services.throttle_wait_s(address="10.0.0.2") == 0

    ApiAuthFailure.objects.filter(address="10.0.0.1").update(
        window_started_at=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert services.throttle_wait_s(address="10.0.0.1") == 0
    services.throttle_failure(address="10.0.0.3")  # a new window; the old one is gone
    assert ApiAuthFailure.objects.get(address="10.0.0.3").failures == 1
    assert not ApiAuthFailure.objects.filter(address="10.0.0.1").exists()
    services.throttle_failure(address="10.0.0.1")
    assert ApiAuthFailure.objects.get(address="10.0.0.1").failures == 1


def test_a_chat_request_keeps_the_page_limits_and_stores_nothing_when_refused(
    chat_models,
) -> None:
    chat_models(USAGE_LIMITS='{"conversations": 1}')
    owner = make_owner("tok-limits")
    turns = [ChatTurn("system", "Be brief."), ChatTurn("user", "Hi"), ChatTurn("assistant", "Hey")]
    request = services.api_chat_start(
        identity=owner.identity, model=MODEL_A, turns=[*turns, ChatTurn("user", "Again")]
    )
    path = [(m.role, m.content) for m in request.path]
    assert path == [("user", "Hi"), ("assistant", "Hey"), ("user", "Again"), ("assistant", "")]
    assert request.assistant_message.conversation.system_prompt == "Be brief."

    with pytest.raises(ChatError) as refused:
        services.api_chat_start(identity=owner.identity, model=MODEL_A, turns=turns[:2])
    assert refused.value.status == 429
    assert refused.value.message == TOO_MANY_CONVERSATIONS.format(limit=1)
    # The history's answers are no requests of this minute; the request itself is one.
    chat_models(USAGE_LIMITS='{"messagesPerMinute": 1}')
    other = make_owner("tok-rate")
    history = [ChatTurn("user", "a"), ChatTurn("assistant", "b")] * 3
    services.api_chat_start(
        identity=other.identity, model=MODEL_A, turns=[*history, ChatTurn("user", "c")]
    )
    with pytest.raises(ChatError) as refused:
        services.api_chat_start(identity=other.identity, model=MODEL_A, turns=turns[1:2])
    assert refused.value.message == RATE_LIMITED.format(limit=1)
    Conversation.objects.filter(user=other.user).delete()

    # Refused after the conversation was made (the question's length): rolled back.
    chat_models(USAGE_LIMITS='{"messageLength": 5}')
    with pytest.raises(ChatError) as refused:
        services.api_chat_start(
            identity=owner.identity, model=MODEL_A, turns=[ChatTurn("user", "far too long")]
        )
    assert refused.value.message == MESSAGE_TOO_LONG.format(length=12, limit=5)
    assert Conversation.objects.count() == 1 and Message.objects.count() == 4
