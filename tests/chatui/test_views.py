"""Accounts: login throttling per account and per address (on /login and /admin/login/ alike),
the session id rotated at login and signup, passwords stored only as hashes."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client

from chatui.views import LOGIN_LOCKED_OUT

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-horse-77"
LOCKED = LOGIN_LOCKED_OUT.format(minutes=int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
LIMIT = settings.AXES_FAILURE_LIMIT


def login(client: Client, username: str, password: str, url: str = "/login"):
    return client.post(url, {"username": username, "password": password})


def is_locked_out(response) -> bool:
    return response.status_code == 429 and LOCKED in response.content.decode()


@pytest.fixture
def ann(chat_models):
    return get_user_model().objects.create_user("ann", password=PASSWORD, is_staff=True)


@pytest.mark.parametrize("url", ["/login", "/admin/login/"])
def test_an_account_is_locked_after_repeated_failures_from_any_address(ann, url):
    for attempt in range(LIMIT):
        client = Client(REMOTE_ADDR=f"10.0.0.{attempt + 1}")  # a new address each time
        response = login(client, "ann", "wrong", url)
        # The LIMIT-th failure is answered with the lockout itself.
        assert response.status_code == (200 if attempt < LIMIT - 1 else 429), attempt
        assert "_auth_user_id" not in client.session
    # Now even the right password, from yet another address, is refused with the reason.
    client = Client(REMOTE_ADDR="10.0.1.1")
    response = login(client, "ann", PASSWORD, url)
    assert is_locked_out(response)
    assert "_auth_user_id" not in client.session
    # Another account is not held by ann's lockout.
    get_user_model().objects.create_user("bob", password=PASSWORD)
    assert login(Client(REMOTE_ADDR="10.0.1.2"), "bob", PASSWORD).status_code == 302


def test_an_address_is_locked_after_failures_on_many_accounts(ann):
    attacker = Client(REMOTE_ADDR="192.0.2.7")
    answers = [login(attacker, f"guess{n}", "wrong").status_code for n in range(30)]
    assert answers[: LIMIT - 1] == [200] * (LIMIT - 1)
    assert answers[LIMIT - 1 :] == [429] * (30 - LIMIT + 1)
    assert is_locked_out(login(attacker, "ann", PASSWORD, "/admin/login/"))
    # ann herself, from her own address, is not held by the attacker's lockout.
    assert login(Client(REMOTE_ADDR="198.51.100.1"), "ann", PASSWORD).status_code == 302


def test_a_success_resets_the_count_and_the_lockout_ends(ann):
    client = Client(REMOTE_ADDR="10.9.9.9")
    for _ in range(LIMIT - 1):
        assert login(client, "ann", "wrong").status_code == 200
    assert login(client, "ann", PASSWORD).status_code == 302
    client = Client(REMOTE_ADDR="10.9.9.9")
    for _ in range(LIMIT - 1):
        assert login(client, "ann", "wrong").status_code == 200
    assert is_locked_out(login(client, "ann", "wrong"))  # the LIMIT-th failure
    assert is_locked_out(login(client, "ann", PASSWORD))
    # The cool-off passes (the attempts are made older than it).
    later = settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= later
        attempt.save()
    assert login(client, "ann", PASSWORD).status_code == 302


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_login_and_signup_rotate_the_session_id(ann):
    client = Client()
    client.post("/api/conversations", "{}", content_type="application/json")
    anonymous = session_key(client)
    assert login(client, "ann", PASSWORD).status_code == 302
    assert session_key(client) != anonymous
    assert not Session.objects.filter(session_key=anonymous).exists()

    client = Client()
    client.post("/api/conversations", "{}", content_type="application/json")
    anonymous = session_key(client)
    response = client.post(
        "/signup", {"username": "neo", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    assert session_key(client) != anonymous
    assert not Session.objects.filter(session_key=anonymous).exists()


def test_passwords_are_stored_only_as_hashes(chat_models):
    client = Client()
    client.post("/signup", {"username": "neo", "password1": PASSWORD, "password2": PASSWORD})
    login(Client(), "neo", "Wrong-" + PASSWORD)  # a failed attempt is recorded too
    user = get_user_model().objects.get(username="neo")
    assert user.check_password(PASSWORD)
    algorithm = settings.PASSWORD_HASHERS[0].rsplit(".", 1)[1].removesuffix("PasswordHasher")
    assert user.password.lower().startswith(algorithm.lower() + "$")
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert PASSWORD not in dump.getvalue()
    assert json.loads(dump.getvalue())  # the dump did hold the database
    for path in ("/api/settings", "/api/export", "/api/conversations", "/"):
        assert PASSWORD not in client.get(path).content.decode()


def test_production_hashes_with_django_defaults():
    """The fast hasher is a test setting only: production keeps Django's (PBKDF2 first)."""
    from config.settings import base

    assert not hasattr(base, "PASSWORD_HASHERS")
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]
