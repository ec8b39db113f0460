"""Login through a real OpenID provider (oidc-provider under node) with a plain HTTP client:
the session key changes at login, admins follow the provider's groups at each login (granted
and revoked), a rotated signing key still verifies, and every hostile answer is refused: a
tampered `state`, an error from the provider, an ID token for another audience, an expired
one, an account outside the allow-list or without a verified e-mail, an account switched off in
the app, and `next=` pointing off the site."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from chatui.oidc.policy import NO_EMAIL, NOT_ALLOWED
from chatui.oidc.views import ACCOUNT_DISABLED, LOGIN_FAILED
from tests.e2e.oidc_stack import CLIENT_ID, HttpVisitor, OidcStack

SESSION_COOKIE = "sessionid"


@pytest.fixture
def visitor(oidc_stack: OidcStack) -> Iterator[HttpVisitor]:
    visitor = HttpVisitor(oidc_stack)
    yield visitor
    visitor.close()


def signed_in_as(visitor: HttpVisitor) -> str | None:
    """The name the chat page shows for this visitor, None for an anonymous one."""
    page = visitor.client.get("/").text
    marker = 'class="user-name" title="Signed in">'
    return page.split(marker, 1)[1].split("<", 1)[0] if marker in page else None


def key_ids(stack: OidcStack) -> set[str]:
    jwks = httpx.get(f"{stack.provider.issuer}/jwks", timeout=5).json()
    return {key["kid"] for key in jwks["keys"]}


def test_login_changes_the_session_and_admins_follow_the_provider(oidc_stack: OidcStack) -> None:
    alice = HttpVisitor(oidc_stack)
    callback = alice.to_callback("alice", start="/login/oidc?next=/admin/")
    anonymous_session = alice.client.cookies[SESSION_COOKIE]
    admin = alice.walk(callback)
    assert (admin.status_code, urlsplit(str(admin.url)).path) == (200, "/admin/")
    assert "Site administration" in admin.text
    assert alice.client.cookies[SESSION_COOKIE] != anonymous_session
    assert signed_in_as(alice) == "Alice"

    bob = HttpVisitor(oidc_stack)
    bob.log_in("bob")
    assert signed_in_as(bob) == "Bob"
    assert bob.client.get("/admin/").status_code == 302

    # The provider drops carol from the admins and rotates its signing key.
    carol = HttpVisitor(oidc_stack)
    carol.log_in("carol")
    assert carol.client.get("/admin/").status_code == 200
    old_keys = key_ids(oidc_stack)
    oidc_stack.provider.accounts["carol"]["groups"] = []
    oidc_stack.provider.restart()
    assert key_ids(oidc_stack).isdisjoint(old_keys)
    again = HttpVisitor(oidc_stack)
    assert again.log_in("carol").status_code == 200
    assert signed_in_as(again) == "Carol"
    assert again.client.get("/admin/").status_code == 302
    assert carol.client.get("/admin/").status_code == 302  # the same user, no longer staff
    for person in (alice, bob, carol, again):
        person.close()


def refused(visitor: HttpVisitor, response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text[:500]
    assert 'id="login-refused"' in response.text
    assert message in response.text.replace("&#x27;", "'")
    assert signed_in_as(visitor) is None


def test_tampered_or_failed_answers_are_refused(oidc_stack: OidcStack) -> None:
    visitor = HttpVisitor(oidc_stack)
    callback = visitor.to_callback("bob")
    location = urlsplit(callback.headers["location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    tampered = f"/login/callback?{urlencode(query | {'state': query['state'] + 'x'})}"
    refused(visitor, visitor.client.get(tampered), 400, LOGIN_FAILED)
    provider_error = f"/login/callback?{urlencode({'error': 'access_denied', 'state': 'x'})}"
    refused(visitor, visitor.client.get(provider_error), 400, LOGIN_FAILED)
    visitor.close()


@pytest.mark.parametrize(
    ("login", "status", "message", "logged"),
    [
        ("aud", 400, LOGIN_FAILED, "'aud'"),
        ("expired", 400, LOGIN_FAILED, "expired"),
        ("mallory", 403, NOT_ALLOWED.format(email="mallory@elsewhere.example"), "sub=mallory"),
        ("unverified", 403, NO_EMAIL, "sub=unverified"),
    ],
)
def test_tokens_and_accounts_that_do_not_qualify_are_refused(
    visitor: HttpVisitor, oidc_stack: OidcStack, login: str, status: int, message: str, logged: str
) -> None:
    refused(visitor, visitor.log_in(login), status, message)
    refusal_lines = [line for line in oidc_stack.app.log().splitlines() if "OpenID login" in line]
    assert any(logged in line for line in refusal_lines), refusal_lines


def test_a_disabled_account_is_refused(oidc_stack: OidcStack) -> None:
    first, second = HttpVisitor(oidc_stack), HttpVisitor(oidc_stack)
    assert first.log_in("dave").status_code == 200
    oidc_stack.deactivate("dave")
    refused(second, second.log_in("dave"), 403, ACCOUNT_DISABLED)
    assert signed_in_as(first) is None  # the session of before is no longer honoured
    first.close()
    second.close()


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example/", "http:evil.example"]
)
def test_next_cannot_leave_the_site(
    visitor: HttpVisitor, oidc_stack: OidcStack, target: str
) -> None:
    login_page = visitor.client.get("/login", params={"next": target}).text
    assert 'href="/login/oidc?next=%2F"' in login_page
    landed = visitor.log_in("bob", start=f"/login/oidc?{urlencode({'next': target})}")
    assert str(landed.url) == f"{oidc_stack.app.url}/"


def test_logout_also_ends_the_provider_session(visitor: HttpVisitor, oidc_stack: OidcStack) -> None:
    visitor.log_in("bob")
    token = visitor.client.cookies["csrftoken"]
    response = visitor.client.post("/logout", data={"csrfmiddlewaretoken": token})
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{oidc_stack.provider.issuer}/session/end"
    )
    query = parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["post_logout_redirect_uri"] == [f"{oidc_stack.app.url}/"]
    assert query["id_token_hint"][0].count(".") == 2
    assert signed_in_as(visitor) is None
