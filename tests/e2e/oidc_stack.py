"""The single sign-on stack of the login tests: the real OpenID provider
(`tests.support.oidc_provider`) and the app (daphne, `LiveServer`) configured to log in
through it, plus the steps of a login that a plain HTTP client takes (`HttpVisitor`).

The app is configured as an operator would: `OPENID_PROVIDER_URL`, `OPENID_CLIENT_ID`, the
secret in the older `OPENID_CONFIG` form, an allow-list of domains and admins by group.
"""

from __future__ import annotations

import re
import sqlite3
from html import unescape
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import httpx

from tests.e2e.server import LiveServer, models_config
from tests.support.oidc_provider import OidcProvider

CLIENT_ID = "chat-app"
CLIENT_SECRET = "a-test-client-secret-that-is-long-enough-for-hs256"
ALLOWED_DOMAIN = "example.com"
ADMIN_GROUP = "chat-admins"
PASSWORD = "any password: the provider's development login takes any"


def account(name: str, domain: str = ALLOWED_DOMAIN, **claims: Any) -> dict[str, Any]:
    """An account's claims: `sub` is `name`, e-mail `name@domain`, verified."""
    return {
        "email": f"{name}@{domain}",
        "email_verified": True,
        "name": name.title(),
        "preferred_username": name,
        "groups": [],
    } | claims


def default_accounts() -> dict[str, dict[str, Any]]:
    return {
        "alice": account("alice", groups=[ADMIN_GROUP]),
        "bob": account("bob"),
        "carol": account("carol", groups=[ADMIN_GROUP]),  # loses the group mid-test
        "dave": account("dave"),  # switched off in the app mid-test
        "mallory": account("mallory", domain="elsewhere.example"),
        "unverified": account("unverified", email_verified=False),
        "aud": account("aud", quirk="wrong-audience"),
        "expired": account("expired", quirk="expired"),
    }


class OidcStack:
    """The provider and the app, each on a free port, each told the other's address."""

    def __init__(self, tgi_url: str, extra_env: dict[str, str] | None = None) -> None:
        self.app = LiveServer(models_config(tgi_url, tgi_url))
        client = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"{self.app.url}/login/callback"],
            "post_logout_redirect_uris": [f"{self.app.url}/"],
        }
        self.provider = OidcProvider([client], default_accounts())
        self.app.extra_env = {
            "OPENID_PROVIDER_URL": self.provider.issuer,
            "OPENID_CLIENT_ID": CLIENT_ID,
            "OPENID_CONFIG": f"{{CLIENT_SECRET: '{CLIENT_SECRET}'}}",
            "OPENID_SCOPES": "openid profile email groups",
            "ALLOWED_USER_DOMAINS": f'["{ALLOWED_DOMAIN}"]',
            "OPENID_ADMIN_CLAIM": "groups",
            "OPENID_ADMIN_VALUES": f'["{ADMIN_GROUP}"]',
        } | (extra_env or {})

    def deactivate(self, username: str) -> None:
        """What an admin does in /admin/: the app's user `username` is no longer active."""
        with sqlite3.connect(self.app.tmp / "db.sqlite3") as db:
            db.execute("UPDATE auth_user SET is_active = 0 WHERE username = ?", (username,))

    def log(self) -> str:
        return f"--- provider\n{self.provider.log()}\n--- app\n{self.app.log()}"

    def __enter__(self) -> Self:
        self.provider.start()
        try:
            self.app.start()
        except BaseException:
            self.provider.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.stop()
        self.provider.stop()


_FORM = re.compile(r'<form[^>]*action="(?P<action>[^"]*)"[^>]*>(?P<body>.*?)</form>', re.S)
_HIDDEN = re.compile(
    r'<input[^>]*type="hidden"[^>]*name="(?P<name>[^"]+)"[^>]*value="(?P<v>[^"]*)"'
)


def form_fields(html: str) -> tuple[str, dict[str, str]]:
    """The first form of a page: its action and its hidden inputs."""
    match = _FORM.search(html)
    assert match is not None, f"no form in the page:\n{html[:2000]}"
    hidden = {m["name"]: unescape(m["v"]) for m in _HIDDEN.finditer(match["body"])}
    return unescape(match["action"]), hidden


class HttpVisitor:
    """A visitor with a plain HTTP client (own cookies), walking redirects one at a time so a
    test can stop at, or tamper with, any step of the login."""

    def __init__(self, stack: OidcStack) -> None:
        self.stack = stack
        self.client = httpx.Client(base_url=stack.app.url, timeout=15)

    def walk(self, response: httpx.Response, *, stop_at: str = "") -> httpx.Response:
        """Follow redirects; stop before requesting a URL whose path is `stop_at`."""
        while response.is_redirect:
            url = urljoin(str(response.url), response.headers["location"])
            if stop_at and urlsplit(url).path == stop_at:
                return response
            response = self.client.get(url)
        return response

    def submit(self, page: httpx.Response, fields: dict[str, str]) -> httpx.Response:
        action, hidden = form_fields(page.text)
        url = urljoin(str(page.url), action)
        return self.client.post(url, data=hidden | fields)

    def to_callback(self, login: str, start: str = "/login/oidc") -> httpx.Response:
        """From `start` through the provider's login and consent pages; returns the
        provider's redirect to the app's callback, not yet followed."""
        page = self.walk(self.client.get(start))
        assert urlsplit(str(page.url)).path.startswith("/interaction/"), page.text[:500]
        consent = self.walk(self.submit(page, {"login": login, "password": PASSWORD}))
        callback = self.walk(self.submit(consent, {}), stop_at="/login/callback")
        assert callback.is_redirect, consent.text[:1000]
        return callback

    def log_in(self, login: str, start: str = "/login/oidc") -> httpx.Response:
        """The whole login; returns the app's last answer."""
        return self.walk(self.to_callback(login, start))

    def close(self) -> None:
        self.client.close()
