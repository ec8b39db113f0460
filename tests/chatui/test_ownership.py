"""Hostile users: two anonymous visitors and two logged-in users try every route of the URL
conf, export, share and admin on each other's data. Every attempt is refused and changes
nothing; every write without the CSRF token is refused. (The websocket:
test_ownership_websocket.py; the people: ownership_people.py.)

The routes come from the URL conf itself: a route missing from CHAT_ATTACKS fails
`test_every_route_is_attacked`, and admin routes are all tried generically, so a new route
cannot be left out.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from chatui.routing import websocket_urlpatterns
from tests.chatui.helpers import MODEL_A
from tests.chatui.ownership_people import PEOPLE, Person, make_person

# --- the URL conf ----------------------------------------------------------------------------


def url_patterns(patterns: list[Any] | None = None, prefix: str = "", ns: str = "") -> Iterator:
    """(name, pattern) of every route: `name` with its namespace, `pattern` the full path."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{ns}{entry.namespace}:" if entry.namespace else ns
            yield from url_patterns(entry.url_patterns, prefix + str(entry.pattern), namespace)
        elif isinstance(entry, URLPattern):
            yield f"{ns}{entry.name or ''}", prefix + str(entry.pattern)


def concrete(pattern: str, values: dict[str, str]) -> str:
    """The path of `pattern` with each parameter (`<conv:name>`, `(?P<name>...)`) filled in."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], pattern)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], path)
    return "/" + path.replace("^", "").replace("$", "")


def is_admin(pattern: str) -> bool:
    return pattern.startswith("admin/")


# --- people ----------------------------------------------------------------------------------


@pytest.fixture
def people(chat_models) -> dict[str, Person]:
    return {name: make_person(name) for name in PEOPLE}


# --- what an intruder tries on each route ----------------------------------------------------


@dataclass(frozen=True)
class Attack:
    method: str
    body: Any = None  # JSON for the API, form data for pages
    status: tuple[int, ...] = (404,)
    form: bool = False


A = Attack
JSON_404 = (A("get"), A("patch", {"title": "mine"}), A("delete"), A("post", {}))
# Routes that answer an intruder (the route is theirs too) but must show only their own data.
CHAT_ATTACKS: dict[str, tuple[Attack, ...]] = {
    "chat": (A("get", status=(200,)),),
    "conversation": (A("get"),),
    # A share is public by design (read-only, the snapshot only); continuing it makes the
    # visitor's own copy.
    "shared": (A("get", status=(200,)),),
    "shared-continue": (A("post", status=(302,)),),
    # A logged-in intruder is sent home (302); the victim's account shows no login either way.
    "login": (A("post", {"username": "{victim_username}", "password": "guess"}, (200, 302), True),),
    "signup": (
        A(
            "post",
            {
                "username": "{victim_username}",
                "password1": "x-Long-pw-9",
                "password2": "x-Long-pw-9",
            },
            (200, 302),
            True,
        ),
    ),
    "logout": (A("post", status=(302,), form=True),),
    "api-models": (A("get", status=(200,)),),
    "api-conversations": (
        A("get", status=(200,)),
        A("post", {"model": MODEL_A}, (201,)),
        A("delete", status=(204,)),
    ),
    "api-conversation": JSON_404[:3],
    "api-conversation-share": (A("post"),),
    "api-settings": (
        A("get", status=(200,)),
        A("patch", {"custom_prompts": {MODEL_A: "intruder"}}, (200,)),
    ),
    "api-export": (A("get", status=(200,)),),
    # The intruder's own tool settings (the victim's stay as they were).
    "api-tools": (
        A("get", status=(200,)),
        A("patch", {"disabled": ["server:builtin"]}, (200,)),
    ),
    "api-message-score": (A("post", {"score": -1}),),
    # Assistants are public by link: anyone lists, opens and starts one (a conversation of
    # their own); only the owner edits or deletes it (others: the login page or 404).
    "assistants": (A("get", status=(200,)),),
    "assistant-new": (A("get", status=(200, 302)),),
    "assistant": (A("get", status=(200, 404)),),
    "assistant-edit": (
        A("get", status=(302, 404)),
        A("post", {"name": "mine", "model": MODEL_A}, (302, 404), True),
    ),
    "assistant-delete": (A("post", status=(302, 404), form=True),),
    "assistant-start": (A("post", status=(302, 404), form=True),),
    "assistant-avatar": (A("get"),),
    # Files: only their owner's; a share serves only its own copies.
    "api-conversation-attachments": (A("post"),),
    # Ownership is checked before anything is fetched (404: nothing leaves the machine).
    "api-conversation-attachment-url": (A("post", {"url": "https://example.com/"}),),
    # Personal API tokens: a user lists and makes only their own (a visitor has none: 403).
    "api-tokens": (A("get", status=(200, 403)), A("post", {"name": "mine"}, (201, 403))),
    "api-token": (A("delete", status=(403, 404)),),
    # Sign-in through a provider: none is configured here, so neither route exists.
    "login-oidc": (A("get"),),
    "login-callback": (A("get"),),
    # The chat API for scripts answers only a bearer token: a session opens nothing (401).
    "api-v1-models": (A("get", status=(401,)),),
    "api-v1-model": (A("get", status=(401,)),),
    "api-v1-chat-completions": (A("post", {"model": MODEL_A, "messages": []}, (401,)),),
    "api-v1-conversations": (A("get", status=(401,)),),
    "api-v1-conversation": (A("get", status=(401,)), A("delete", status=(401,))),
    "api-v1-unknown": (A("get", status=(401, 404)),),
    "api-attachment": (A("get"),),
    "shared-file": (A("get"),),
    # Operations: open probes and (from loopback, the test client's address) the metrics, which
    # carry counts by model and endpoint only, never anybody's data.
    "healthz": (A("get", status=(200,)),),
    "readyz": (A("get", status=(200, 503)),),
    "metrics": (A("get", status=(200,)),),
}
ADMIN_ATTACKS = (A("get", status=(302, 404)), A("post", {}, (302, 404), True))
ADMIN_LOGIN_ATTACKS = (
    A("get", status=(200,)),
    A("post", {"username": "{victim_username}", "password": "guess"}, (200,), True),
)


def parameters(victim: Person) -> dict[str, str]:
    return {
        "conversation_id": victim.conversation_id,
        "share_id": victim.share_id,
        "assistant_id": victim.assistant_id,
        "message_id": victim.answer_id,
        "attachment_id": victim.attachment_id,
        "object_id": victim.conversation_id,
        "id": str(victim.user.pk if victim.user else 1),
        "content_type_id": "1",
        "app_label": "chatui",
        "url": "chatui/nothing/",
        "token_id": victim.token_id,
        "model_id": MODEL_A,
        "path": "nothing",
    }


def send(client: Client, path: str, attack: Attack, victim: Person) -> Any:
    """One attack: form data for pages (and GET), JSON for the API."""
    body = attack.body
    if isinstance(body, dict):
        username = victim.user.username if victim.user else victim.name
        body = {
            key: value.replace("{victim_username}", username) if isinstance(value, str) else value
            for key, value in body.items()
        }
    if attack.form or attack.method == "get":
        return getattr(client, attack.method)(path, body or {})
    data = json.dumps(body) if body is not None else ""
    return getattr(client, attack.method)(path, data, content_type="application/json")


def test_every_route_is_attacked():
    chat_routes = {name for name, pattern in url_patterns() if not is_admin(pattern)}
    assert chat_routes == set(CHAT_ATTACKS)
    assert [str(p.pattern) for p in websocket_urlpatterns] == [
        "ws/conversations/<uuid:conversation_id>/"
    ]  # attacked in test_ownership_websocket.py


INTRUDERS = [*PEOPLE, None]  # None: a visitor without any cookie


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("intruder_name", "victim_name"),
    [(i, v) for i, v in itertools.product(INTRUDERS, PEOPLE) if i != v],
)
def test_nobody_reaches_anybody_elses_data(people, intruder_name, victim_name):
    victim = people[victim_name]
    intruder = people.get(intruder_name) if intruder_name else None
    before = victim.state()
    values = parameters(victim)
    tried = 0
    client = intruder.client() if intruder else Client()
    for name, pattern in url_patterns():
        path = concrete(pattern, values)
        if name in ("admin:login", "admin-login"):  # Django's admin login, or ours in front
            attacks = ADMIN_LOGIN_ATTACKS
        elif is_admin(pattern):
            attacks = ADMIN_ATTACKS
        else:
            attacks = CHAT_ATTACKS[name]
        for attack in attacks:
            response = send(client, path, attack, victim)
            if attack.form and attack.method == "post":  # may have logged in or out: afresh
                client = intruder.client() if intruder else Client()
            where = (attack.method, path)
            assert response.status_code in attack.status, (*where, response.status_code)
            content = response.content.decode(errors="replace")
            for secret in victim.secrets:
                assert secret not in content, (*where, secret)
            if response.status_code == 302 and is_admin(pattern):
                location = response["Location"]
                assert location.startswith("/admin/login/") or location == "/admin/", where
            tried += 1
    assert tried > 100
    assert victim.state() == before
    # The victim still has everything.
    data = victim.client().get(f"/api/conversations/{victim.conversation_id}").json()
    assert data["title"] == f"{victim.name}-title"


@pytest.mark.django_db
def test_every_write_without_the_csrf_token_is_refused(people):
    """As the owner (a staff user, so admin views are reachable too), every route, every
    mutating method: 403 and nothing changed. The chat API for scripts takes no cookie, so it
    needs no CSRF token: a session's write there is 401 (405 where the route reads only, 404
    off its routes)."""
    owner = people["user1"]
    owner.user.is_staff = owner.user.is_superuser = True
    owner.user.save()
    values = parameters(owner)
    client = owner.client(enforce_csrf_checks=True)
    client.get("/")  # the CSRF cookie, but never the token in the request
    states = {name: person.state() for name, person in people.items()}
    methods = ("post", "put", "patch", "delete")
    for (_, pattern), method in itertools.product(url_patterns(), methods):
        path = concrete(pattern, values)
        refused = (401, 404, 405) if path.startswith("/api/v1/") else (403,)
        response = getattr(client, method)(path, "{}", content_type="application/json")
        assert response.status_code in refused, (method, path, response.status_code)
        response = getattr(client, method)(path, {"title": "x"}) if method == "post" else None
        assert response is None or response.status_code in refused, (method, path)
    assert {name: person.state() for name, person in people.items()} == states
    # The token is what was missing: the same client can write with it.
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        "/api/conversations", "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201
