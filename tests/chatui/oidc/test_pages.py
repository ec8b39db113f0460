"""With a provider configured: the login page offers it first; local passwords and sign-up
are off unless asked for (and each switches on its own); AUTOMATIC_LOGIN sends visitors to
the provider; an unreachable provider is a readable page. Without one, nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings

from bench.processes import free_port
from chatui.oidc.middleware import LOGIN_REQUIRED, AutomaticLoginMiddleware
from chatui.oidc.views import PROVIDER_UNREACHABLE
from chatui.views import LOCAL_LOGIN_OFF, SIGNUP_CLOSED
from config.openid import OpenIDSettings

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-horse-77"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
OPENID_BACKEND = "chatui.oidc.backend.OpenIDBackend"
# Nothing listens there: discovery fails as when the provider is down.
UNREACHABLE = OpenIDSettings(
    provider_url=f"http://127.0.0.1:{free_port()}",
    client_id="chat",
    client_secret="s3cret",
)


def with_provider(*, local: bool = False, signup: bool = False, **openid: object):
    """The settings `config.settings.base` derives from these variables."""
    backends = ["axes.backends.AxesStandaloneBackend", OPENID_BACKEND]
    if local:
        backends.insert(1, MODEL_BACKEND)
    return override_settings(
        OPENID=replace(UNREACHABLE, **openid),
        ALLOW_LOCAL_LOGIN=local,
        ALLOW_SIGNUP=signup,
        AUTHENTICATION_BACKENDS=backends,
    )


@pytest.fixture
def local_user() -> Iterator[object]:
    yield get_user_model().objects.create_user("carol", password=PASSWORD, is_staff=True)


def test_without_a_provider_the_local_pages_are_unchanged(client: Client, local_user) -> None:
    page = client.get("/login").content.decode()
    assert 'id="openid-login"' not in page and 'name="password"' in page and "/signup" in page
    assert client.get("/login/oidc").status_code == 404
    assert client.get("/login/callback?code=x&state=y").status_code == 404
    assert client.post("/login", {"username": "carol", "password": PASSWORD}).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_provider_first_and_passwords_off_by_default(client: Client, local_user) -> None:
    with with_provider():
        page = client.get("/login?next=/assistants").content.decode()
        assert 'href="/login/oidc?next=%2Fassistants"' in page
        assert 'name="password"' not in page and "/signup" not in page
        assert 'id="signup-link"' not in client.get("/").content.decode()

        refused = client.post("/login", {"username": "carol", "password": PASSWORD})
        assert refused.status_code == 403 and LOCAL_LOGIN_OFF in refused.content.decode()
        closed = client.post("/signup", {"username": "x", "password1": PASSWORD})
        assert closed.status_code == 403 and SIGNUP_CLOSED in closed.content.decode()
        assert not get_user_model().objects.filter(username="x").exists()

        # the admin's own form is no way round it
        admin = client.post(
            "/admin/login/?next=/admin/", {"username": "carol", "password": PASSWORD}
        )
        assert admin.status_code == 302 and admin["Location"] == "/login?next=%2Fadmin%2F"
        assert client.get("/admin/").status_code == 302


def test_local_login_and_signup_switch_on_each_on_its_own(client: Client, local_user) -> None:
    with with_provider(local=True):
        page = client.get("/login").content.decode()
        assert page.index('id="openid-login"') < page.index('name="password"')
        assert "/signup" not in page and client.get("/signup").status_code == 403
        assert client.post("/login", {"username": "carol", "password": PASSWORD}).status_code == 302
        assert client.get("/admin/").status_code == 200
    with with_provider(local=True, signup=True):
        assert client.get("/signup").status_code == 200


def test_an_unreachable_provider_is_a_readable_page(client: Client) -> None:
    with with_provider():
        response = client.get("/login/oidc?next=/")
    assert response.status_code == 502
    assert PROVIDER_UNREACHABLE in response.content.decode()


def test_automatic_login_sends_visitors_to_the_provider_first() -> None:
    def reached(request) -> HttpResponse:
        return HttpResponse("page")

    with override_settings(OPENID=UNREACHABLE), pytest.raises(MiddlewareNotUsed):
        AutomaticLoginMiddleware(reached)
    with override_settings(
        OPENID=OpenIDSettings(**{**UNREACHABLE.__dict__, "automatic_login": True})
    ):
        middleware = AutomaticLoginMiddleware(reached)

    def visit(path: str, user: object = None) -> HttpResponse:
        request = RequestFactory().get(path)
        request.user = user or AnonymousUser()
        return middleware(request)

    page = visit("/conversation/1?x=2")
    assert page.status_code == 302
    assert page["Location"] == "/login/oidc?next=%2Fconversation%2F1%3Fx%3D2"
    api = visit("/api/conversations")
    assert api.status_code == 401 and LOGIN_REQUIRED in api.content.decode()
    for open_path in ("/login", "/login/callback", "/static/chatui/app.css", "/healthz"):
        assert visit(open_path).content == b"page"
    assert visit("/", user=get_user_model()(username="dan")).content == b"page"
    assert settings.OPENID.automatic_login is False  # the test settings keep it off
