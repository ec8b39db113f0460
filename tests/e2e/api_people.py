"""People of the chat API tests, made over HTTP as a person would: sign up (or log in) on the
pages with a session cookie, then create personal API tokens in settings (`/api/tokens`).

Every client may connect from its own loopback address (127.0.0.2, 127.0.0.3, ...): the API
throttles failed tokens per client address, and a test's failures must not throttle the
others'.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import httpx

from bench.processes import PROJECT_ROOT, VENV_BIN
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


def superuser(server: LiveServer, username: str) -> Person:
    """A superuser (made by `createsuperuser`, as an operator would), logged in, with a token."""
    env = server.env() | {"DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    command = [str(VENV_BIN / "python"), "manage.py", "createsuperuser", "--noinput"]
    command += ["--username", username, "--email", f"{username}@example.com"]
    subprocess.run(command, cwd=PROJECT_ROOT, env=env | {"PATH": os.environ["PATH"]}, check=True)
    session = client(server)
    _form_post(session, "/login", {"username": username, "password": PASSWORD})
    person = Person(username, session)
    person.token = str(person.create_token("admin script")["token"])
    return person
