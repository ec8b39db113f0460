"""The user an identity at the provider logs in as: keyed by issuer + `sub`, never by e-mail;
a new user has no usable password and takes no local account's name; admin flags follow the
claims at every login, granted and revoked."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from chatui.models import OpenIDAccount
from chatui.oidc.accounts import openid_user_login
from config.openid import OpenIDSettings

pytestmark = pytest.mark.django_db

ISSUER = "https://sso.example.com"
OPENID = OpenIDSettings(admin_claim="groups", admin_values=("chat-admins",))


def ann(**extra: object) -> dict[str, object]:
    return {
        "sub": "0a1b",
        "email": "ann@example.com",
        "preferred_username": "ann",
        "name": "Ann Example",
    } | extra


def test_the_same_subject_is_the_same_user_and_the_email_is_not_a_key() -> None:
    first = openid_user_login(issuer=ISSUER, claims=ann(), openid=OPENID)
    again = openid_user_login(issuer=ISSUER, claims=ann(email="ann@new.example"), openid=OPENID)
    same_email = openid_user_login(issuer=ISSUER, claims=ann(sub="ffff"), openid=OPENID)
    other_issuer = openid_user_login(issuer="https://other.example", claims=ann(), openid=OPENID)

    assert again.pk == first.pk and again.email == "ann@new.example"
    assert len({first.pk, same_email.pk, other_issuer.pk}) == 3
    assert (first.username, same_email.username, other_issuer.username) == (
        "ann",
        "ann-2",
        "ann-3",
    )
    assert first.first_name == "Ann Example" and not first.has_usable_password()
    account = OpenIDAccount.objects.get(user=first)
    assert (account.issuer, account.subject, account.email) == (ISSUER, "0a1b", "ann@new.example")


def test_a_local_account_of_the_same_name_is_not_taken_over() -> None:
    local = get_user_model().objects.create_user("Ann", password="Correct-horse-77")
    user = openid_user_login(issuer=ISSUER, claims=ann(), openid=OPENID)
    assert user.pk != local.pk and user.username == "ann-2"
    local.refresh_from_db()
    assert local.check_password("Correct-horse-77")


def test_an_unverified_email_is_not_stored_and_odd_names_are_cleaned() -> None:
    user = openid_user_login(
        issuer=ISSUER,
        claims={"sub": "x/y z", "email": "eve@example.com", "email_verified": False},
        openid=OPENID,
    )
    assert user.email == "" and user.username == "eve@example.com"
    nameless = openid_user_login(issuer=ISSUER, claims={"sub": "<>!"}, openid=OPENID)
    assert nameless.username == "user"


def test_admin_flags_follow_the_claims_at_each_login(client: Client) -> None:
    user = openid_user_login(issuer=ISSUER, claims=ann(groups=["chat-admins"]), openid=OPENID)
    assert user.is_staff and user.is_superuser
    client.force_login(user)
    listing = client.get("/admin/chatui/openidaccount/")
    assert listing.status_code == 200 and "0a1b" in listing.content.decode()
    assert client.get("/admin/chatui/openidaccount/add/").status_code == 403
    user = openid_user_login(issuer=ISSUER, claims=ann(groups=[]), openid=OPENID)
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser
