"""Who may log in through the provider, who is an admin, and where a login may return to:
pure functions, checked on plain claims and strings."""

from __future__ import annotations

import pytest

from chatui.oidc.policy import NO_EMAIL, NOT_ALLOWED, is_admin, login_refusal, verified_email
from chatui.oidc.redirects import DEFAULT_NEXT, safe_next
from config.openid import OpenIDSettings

LISTS = OpenIDSettings(allowed_emails=("boss@partner.example",), allowed_domains=("example.com",))
ADMINS = OpenIDSettings(
    admin_users=("root@example.com", "sub-42"),
    admin_claim="groups",
    admin_values=("chat-admins",),
)


def claims(email: str | None = None, **extra: object) -> dict[str, object]:
    return {"sub": "sub-1", **({"email": email} if email is not None else {}), **extra}


def test_without_allow_lists_everyone_may_log_in() -> None:
    assert login_refusal(claims(), OpenIDSettings()) is None


@pytest.mark.parametrize(
    ("who", "refusal"),
    [
        (claims("ann@example.com"), None),
        (claims("Ann@EXAMPLE.com"), None),
        (claims("boss@partner.example"), None),
        (claims("eve@partner.example"), NOT_ALLOWED.format(email="eve@partner.example")),
        (claims("eve@example.com.evil"), NOT_ALLOWED.format(email="eve@example.com.evil")),
        (claims("eve@sub.example.com"), NOT_ALLOWED.format(email="eve@sub.example.com")),
        (claims("ann@example.com", email_verified=False), NO_EMAIL),
        (claims(), NO_EMAIL),
        (claims(["ann@example.com"]), NO_EMAIL),
    ],
)
def test_allow_lists_admit_only_a_matching_verified_email(
    who: dict[str, object], refusal: str | None
) -> None:
    assert login_refusal(who, LISTS) == refusal


def test_an_email_counts_unless_the_provider_says_it_is_unverified() -> None:
    assert verified_email(claims(" Ann@Example.com ")) == "ann@example.com"
    assert verified_email(claims("ann@example.com", email_verified=True)) == "ann@example.com"
    assert verified_email(claims("ann@example.com", email_verified=False)) == ""


@pytest.mark.parametrize(
    ("who", "admin"),
    [
        (claims("root@example.com"), True),
        (claims("ROOT@example.com"), True),
        (claims("root@example.com", email_verified=False), False),
        ({"sub": "sub-42"}, True),
        ({"sub": "SUB-42"}, False),
        (claims("ann@example.com", groups=["staff", "chat-admins"]), True),
        (claims("ann@example.com", groups="chat-admins"), True),
        (claims("ann@example.com", groups=["staff"]), False),
        (claims("ann@example.com", roles=["chat-admins"]), False),
        (claims("ann@example.com"), False),
    ],
)
def test_admins_by_subject_verified_email_or_claim(who: dict[str, object], admin: bool) -> None:
    assert is_admin(who, ADMINS) is admin
    assert is_admin(who, OpenIDSettings()) is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/conversation/1?x=1#top", "/conversation/1?x=1#top"),
        ("/", "/"),
        (None, DEFAULT_NEXT),
        ("", DEFAULT_NEXT),
        ("https://evil.example/", DEFAULT_NEXT),
        ("//evil.example/", DEFAULT_NEXT),
        ("/\\evil.example/", DEFAULT_NEXT),
        ("\\\\evil.example", DEFAULT_NEXT),
        ("javascript:alert(1)", DEFAULT_NEXT),
        ("/\t/evil.example", DEFAULT_NEXT),
        ("evil.example", DEFAULT_NEXT),
    ],
)
def test_only_a_path_of_this_site_survives_as_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected
