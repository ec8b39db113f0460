"""People of the chat API tests, made over HTTP as a person would: sign up (or log in) on the
pages with a session cookie, then create personal API tokens in settings (`/api/tokens`).

Every client may connect from its own loopback address (127.0.0.2, 127.0.0.3, ...): the API
throttles failed tokens per client address, and a test's failures must not throttle the
others'.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import httpx

from tests.e2e.server import LiveServer

PASSWORD = "a-long-Passphrase-42"


def client(server: LiveServer, *, address: str = "127.0.0.1", **headers: str) -> httpx.Client:
    """An HTTP client of `server` whose connections leave from loopback `address`."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, headers=headers, timeout=30)


def _csrf(session: httpx.Client) -> str:
    return session.cookies.get("csrftoken", "")


@dataclass
class Person:
    """A user with a logged-in session (`session`) and one API token (`token`)."""

    username: str
    session: httpx.Client
    token: str = ""

    def create_token(self, name: str) -> dict[str, object]:
        response = self.session.post(
            "/api/tokens", json={"name": name}, headers={"X-CSRFToken": _csrf(self.session)}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def revoke_token(self, token_id: object) -> httpx.Response:
        return self.session.delete(
            f"/api/tokens/{token_id}", headers={"X-CSRFToken": _csrf(self.session)}
        )


def _form_post(session: httpx.Client, path: str, data: dict[str, str]) -> None:
    session.get(path)
    response = session.post(path, data=data | {"csrfmiddlewaretoken": _csrf(session)})
    assert response.status_code == 302 and response.headers["location"] == "/", response.text


def sign_up(server: LiveServer, username: str) -> Person:
    """A new account, logged in, with a token named "script"."""
    session = client(server)
    form = {"username": username, "password1": PASSWORD, "password2": PASSWORD}
    _form_post(session, "/signup", form)
    person = Person(username, session)
    person.token = str(person.create_token("script")["token"])
    return person


def make_superuser(server: LiveServer, person: Person) -> None:
    """An operator makes `person` a superuser. Written straight into the server's SQLite
    database: `manage.py createsuperuser` would cost seconds of start-up."""
    with sqlite3.connect(server.tmp / "db.sqlite3") as db:
        db.execute(
            "UPDATE auth_user SET is_staff = 1, is_superuser = 1 WHERE username = ?",
            (person.username,),
        )
