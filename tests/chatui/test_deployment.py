"""Deployment defaults: sessions only when a visitor writes, a Content-Security-Policy on every
page with no inline script anywhere, TLS settings from the environment, and the websocket's
origin check (scheme, host and port, as Django's CSRF check)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client

from chatui.origin import origin_allowed
from tests.chatui.helpers import TIMEOUT, db, make_owner

ROOT = Path(__file__).resolve().parents[2]


# --- sessions ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reading_creates_no_session_and_the_first_write_does(chat_models):
    client = Client()
    for path in ("/", "/api/models", "/api/conversations", "/api/conversations?q=x",
                 "/api/settings", "/api/export", "/login", "/signup", "/r/nothing"):  # fmt: skip
        response = client.get(path)
        assert response.status_code in (200, 404), path
        assert settings.SESSION_COOKIE_NAME not in response.cookies, path
    assert Session.objects.count() == 0
    response = client.post("/api/conversations", "{}", content_type="application/json")
    assert response.status_code == 201
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == settings.SESSION_COOKIE_AGE == 30 * 24 * 3600
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert Session.objects.count() == 1
    assert len(client.get("/api/conversations").json()["conversations"]) == 1


# --- Content-Security-Policy ---------------------------------------------------------------


@pytest.mark.django_db
def test_every_page_has_a_policy_without_inline_script(chat_models):
    staff = get_user_model().objects.create_user("root", password="x", is_staff=True)
    admin = Client()
    admin.force_login(staff)
    visitor = Client()
    cid = visitor.post("/api/conversations", "{}", content_type="application/json").json()["id"]
    pages = [
        (visitor, "/"),
        (visitor, f"/conversation/{cid}"),
        (visitor, "/r/nothing"),
        (visitor, "/login"),
        (visitor, "/signup"),
        (visitor, "/admin/login/"),
        (visitor, "/api/models"),
        (admin, "/admin/"),
        (admin, "/admin/chatui/conversation/"),
        (admin, f"/admin/chatui/conversation/{cid}/change/"),
        (admin, "/admin/models/"),
    ]
    for client, path in pages:
        response = client.get(path)
        policy = dict(
            part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
        )
        assert policy["script-src"] == "'self'", path
        assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'self'"
        assert "data:" not in policy["script-src"] and "unsafe" not in policy["script-src"]
        html = response.content.decode()
        for script in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in script or 'type="application/json"' in script, (path, script)
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no inline event handlers
        assert "javascript:" not in html, path


def test_templates_hold_no_inline_script():
    for template in [*ROOT.glob("templates/**/*.html"), *ROOT.glob("chatui/templates/**/*.html")]:
        text = template.read_text()
        for script in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in script, (template, script)
        assert not re.search(r"\son[a-z]+\s*=", text), template


# --- TLS settings from the environment -----------------------------------------------------


SETTINGS_PROBE = (
    "import json; from config.settings import base as s; print(json.dumps([s.SESSION_COOKIE_SECURE,"
    " s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT,"
    " getattr(s, 'SECURE_PROXY_SSL_HEADER', None), s.SESSION_COOKIE_AGE,"
    " s.CONTENT_SECURITY_POLICY['DIRECTIVES'].get('upgrade-insecure-requests')]))"
)
TLS_VARIABLES = ("HTTPS", "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER")


def settings_with(**env: str) -> list:
    base = {k: v for k, v in os.environ.items() if k not in TLS_VARIABLES}
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=ROOT,
        env={**base, **dict.fromkeys(TLS_VARIABLES, ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_tls_settings_come_from_the_environment():
    month = 30 * 24 * 3600
    assert settings_with() == [False, False, 0, False, None, month, None]
    assert settings_with(
        HTTPS="true", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto", SESSION_COOKIE_AGE="3600"
    ) == [True, True, 365 * 24 * 3600, False, ["HTTP_X_FORWARDED_PROTO", "https"], 3600, True]
    assert settings_with(HTTPS="1", SECURE_HSTS_SECONDS="0", SECURE_SSL_REDIRECT="yes")[2:4] == [
        0,
        True,
    ]


@pytest.mark.django_db
def test_a_secure_request_gets_hsts_and_secure_cookies(chat_models, settings):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    response = client.get("/")
    assert response["Strict-Transport-Security"] == "max-age=3600"
    assert response.cookies[settings.CSRF_COOKIE_NAME]["secure"]
    response = client.post("/api/conversations", "{}", content_type="application/json")
    assert response.cookies[settings.SESSION_COOKIE_NAME]["secure"]


# --- the websocket's origin ----------------------------------------------------------------


def scope(origin: str | None, host: str = "testserver", scheme: str = "ws", **headers: str):
    pairs = [(b"host", host.encode())]
    if origin is not None:
        pairs.append((b"origin", origin.encode()))
    pairs += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": pairs}


def test_the_origin_must_match_scheme_host_and_port(settings):
    settings.ALLOWED_HOSTS = ["testserver", "chat.example.com"]
    assert origin_allowed(scope("http://testserver"))
    assert origin_allowed(scope("http://testserver:80"))
    assert origin_allowed(scope("http://testserver:8000", host="testserver:8000"))
    assert origin_allowed(scope("https://chat.example.com", "chat.example.com", "wss"))
    for origin in (
        "http://testserver:9999",  # another program on the same host
        "https://testserver",  # another scheme
        "http://evil.example",
        "http://testserver.evil.example",
        "null",
        "",
        "ws://testserver",
        "http://testserver:notaport",
        None,
    ):
        assert not origin_allowed(scope(origin)), origin
    assert not origin_allowed(scope("http://testserver:8000", host="testserver:8001"))
    assert not origin_allowed(scope("http://chat.example.com", "chat.example.com", "wss"))
    assert not origin_allowed(scope("http://evil.example", host="evil.example"))  # Host too


def test_behind_a_tls_proxy_and_trusted_origins(settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    forwarded = {"x_forwarded_proto": "https"}
    assert origin_allowed(scope("https://testserver", **forwarded))
    assert not origin_allowed(scope("http://testserver", **forwarded))
    assert not origin_allowed(scope("https://testserver"))  # no header: plain http
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.example.org"]
    assert origin_allowed(scope("https://app.example.com"))
    assert origin_allowed(scope("https://a.example.org"))
    for origin in (
        "http://app.example.com",
        "https://app.example.com:8443",
        "http://a.example.org",
        "https://example.org.evil.com",
    ):
        assert not origin_allowed(scope(origin)), origin


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (b"http://testserver", True),
        (b"http://testserver:9999", False),
        (b"https://testserver", False),
        (b"http://evil.example", False),
    ],
)
async def test_the_application_applies_the_origin_check(chat_models, origin, accepted):
    from config.asgi import application

    owner = await db(make_owner)()
    socket = WebsocketCommunicator(
        application, "/ws/conversations/00000000-0000-0000-0000-000000000000/",
        headers=owner.headers(origin=origin),
    )  # fmt: skip
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected is accepted
    await socket.disconnect()
