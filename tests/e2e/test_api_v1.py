"""The chat API for scripts (`/api/v1/`) against a live daphne, as scripts use it: the real
`openai` client and `curl`, with personal tokens made in settings; and every hostile case:
another user's token, bad and revoked tokens, the session cookie instead of a token, a token
on the admin, throttling, malformed requests."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from chatui.api_v1.errors import INVALID_TOKEN, MISSING_TOKEN
from chatui.api_v1.schemas import ONLY_TEXT
from chatui.services import LAST_NOT_USER, TOKENS_NEED_LOGIN
from chatui.validation import BODY_TOO_LARGE
from tests.chatui.fake_endpoints import Script
from tests.e2e.api_people import Person, client, make_superuser, sign_up
from tests.e2e.conftest import DEFAULT_TOKENS, Fakes
from tests.e2e.server import MODEL_A_ID, MODEL_B_ID, LiveServer

ANSWER = "Hello! How can I help?"
THROTTLE_LIMIT = 5  # LOGIN_FAILURE_LIMIT's default


@pytest.fixture(scope="module")
def people(app_server: LiveServer) -> Iterator[dict[str, Person]]:
    people = {name: sign_up(app_server, name) for name in ("api-alice", "api-bob", "api-root")}
    make_superuser(app_server, people["api-root"])
    yield people
    for person in people.values():
        person.session.close()


def _openai(server: LiveServer, token: str, *, address: str = "127.0.0.1") -> openai.OpenAI:
    """The real `openai` client, unchanged but for its base URL (and its loopback address)."""
    http = httpx.Client(transport=httpx.HTTPTransport(local_address=address))
    return openai.OpenAI(
        base_url=server.url + "/api/v1", api_key=token, max_retries=0, http_client=http
    )


def test_openai_client_chats_streamed_and_not_into_the_users_sidebar(
    app_server: LiveServer, fakes: Fakes, people: dict[str, Person]
) -> None:
    alice = people["api-alice"]
    api = _openai(app_server, alice.token)
    assert [m.id for m in api.models.list()] == [MODEL_A_ID, MODEL_B_ID]
    assert api.models.retrieve(MODEL_A_ID).id == MODEL_A_ID
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("org/not-listed")

    whole = api.chat.completions.create(
        model=MODEL_A_ID,
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        ],
    )
    assert whole.choices[0].message.content == ANSWER
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.completion_tokens > 0
    prompt = fakes.a.requests[-1].body["inputs"]
    assert "Answer briefly." in prompt and "Hi there" in prompt and "What is 2+2?" in prompt
    whole_id = whole.model_extra["conversation_id"]
    follow = api.chat.completions.create(
        model=MODEL_A_ID,
        messages=[{"role": "user", "content": "And 3+3?"}],
        extra_body={"conversation_id": whole_id},  # this API's own: the next question
    )
    assert follow.model_extra["conversation_id"] == whole_id
    prompt = fakes.a.requests[-1].body["inputs"]
    assert "What is 2+2?" in prompt and ANSWER in prompt and "And 3+3?" in prompt

    fakes.b.script = Script(tokens=DEFAULT_TOKENS, delay=0.1)
    stream = api.chat.completions.create(
        model=MODEL_B_ID,
        messages=[{"role": "user", "content": "Stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks, arrivals = [], []
    for item in stream:
        chunks.append(item)
        if item.choices and item.choices[0].delta.content:
            arrivals.append(time.monotonic())
    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    assert "".join(d for d in deltas if d) == ANSWER
    assert len(arrivals) == len(DEFAULT_TOKENS)  # token by token...
    assert arrivals[-1] - arrivals[0] > 0.3  # ...as the model writes them, not all at the end
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0

    # The page's own view of the account (the sidebar) shows both, stored whole.
    sidebar = alice.session.get("/api/conversations").json()["conversations"]
    by_id = {c["id"]: c for c in sidebar}
    assert by_id[whole_id]["model"] == MODEL_A_ID
    assert {c["model"] for c in sidebar} >= {MODEL_A_ID, MODEL_B_ID}
    stored = alice.session.get(f"/api/conversations/{whole_id}").json()
    assert stored["system_prompt"] == "Answer briefly."
    assert [(m["role"], m["content"]) for m in stored["messages"]] == [
        ("user", "Hi there"),
        ("assistant", "Hello."),
        ("user", "What is 2+2?"),
        ("assistant", ANSWER),
        ("user", "And 3+3?"),
        ("assistant", ANSWER),
    ]
    # ... and so does the API.
    with client(app_server, Authorization=f"Bearer {alice.token}") as http:
        listed = http.get("/api/v1/conversations").json()
        assert listed["object"] == "list" and whole_id in {c["id"] for c in listed["data"]}
        assert (
            http.get(f"/api/v1/conversations/{whole_id}").json()["messages"] == (stored["messages"])
        )


def test_curl_streams_an_answer_with_a_token(
    app_server: LiveServer, fakes: Fakes, people: dict[str, Person]
) -> None:
    body = {"model": MODEL_A_ID, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    command = ["curl", "-sSN", "--fail-with-body", "-D", "-", "-d", json.dumps(body)]
    command += ["-H", f"Authorization: Bearer {people['api-alice'].token}"]
    command += ["-H", "Content-Type: application/json", app_server.url + "/api/v1/chat/completions"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    head, _, events = done.stdout.partition("\n\n")  # text mode: CRLF read as LF
    assert "content-type: text/event-stream" in head.lower()
    assert "x-conversation-id:" in head.lower()
    lines = [line for line in events.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == ANSWER


def test_a_token_sees_only_its_owners_data_and_never_the_admin(
    app_server: LiveServer, fakes: Fakes, people: dict[str, Person]
) -> None:
    alice, bob = people["api-alice"], people["api-bob"]
    made = _openai(app_server, alice.token).chat.completions.create(
        model=MODEL_A_ID, messages=[{"role": "user", "content": "Private"}]
    )
    conversation = f"/api/v1/conversations/{made.model_extra['conversation_id']}"
    with client(app_server, address="127.0.0.2", Authorization=f"Bearer {bob.token}") as http:
        for method in ("GET", "DELETE"):
            refused = http.request(method, conversation)
            assert refused.status_code == 404
            assert refused.json()["error"]["type"] == "not_found_error"
        body = {
            "model": MODEL_A_ID,
            "messages": [{"role": "user", "content": "Bob was here"}],
            "conversation_id": made.model_extra["conversation_id"],
        }
        assert http.post("/api/v1/chat/completions", json=body).status_code == 404
        listed = http.get("/api/v1/conversations").json()["data"]
        assert made.model_extra["conversation_id"] not in {c["id"] for c in listed}
    # The session cookie alone opens nothing here; anonymous visitors get no tokens.
    missing = alice.session.get("/api/v1/models")
    assert missing.status_code == 401 and missing.json()["error"]["message"] == MISSING_TOKEN
    with client(app_server) as anonymous:
        anonymous.get("/")
        refused = anonymous.post(
            "/api/tokens",
            json={"name": "x"},
            headers={"X-CSRFToken": anonymous.cookies.get("csrftoken", "")},
        )
        assert refused.status_code == 403 and refused.json()["error"] == TOKENS_NEED_LOGIN
    # Alice's conversation is still hers; she deletes it with her token.
    with client(app_server, Authorization=f"Bearer {alice.token}") as http:
        messages = http.get(conversation).json()["messages"]
        assert [m["content"] for m in messages] == ["Private", ANSWER]
        assert http.delete(conversation).status_code == 204
        assert http.get(conversation).status_code == 404

    root = people["api-root"]
    assert root.session.get("/admin/").status_code == 200  # the session opens the admin...
    with client(app_server, address="127.0.0.2", Authorization=f"Bearer {root.token}") as http:
        assert http.get("/api/v1/models").status_code == 200  # ...the token works here...
        for path in ("/admin/", "/admin/runtime.json", "/admin/auth/user/"):
            response = http.get(path)  # ...and opens nothing in the admin
            assert response.status_code == 302, path
            assert response.headers["location"].startswith("/admin/login/"), path
        assert "api-root" not in http.get("/").text  # nor logs anyone into the pages


def test_bad_and_revoked_tokens_are_refused_and_failures_throttle_the_address(
    app_server: LiveServer, fakes: Fakes, people: dict[str, Person]
) -> None:
    mallory = sign_up(app_server, "api-mallory")
    with client(app_server, address="127.0.0.3") as http:
        for _ in range(THROTTLE_LIMIT + 1):  # no token is no guess: never throttled
            assert http.get("/api/v1/models").status_code == 401
        bearer = {"Authorization": f"Bearer {mallory.token}"}
        assert http.get("/api/v1/models", headers=bearer).status_code == 200
        token_id = mallory.session.get("/api/tokens").json()["tokens"][0]["id"]
        assert mallory.revoke_token(token_id).status_code == 200
        revoked = http.get("/api/v1/models", headers=bearer)
        assert revoked.status_code == 401
        assert revoked.json()["error"] == {
            "message": INVALID_TOKEN,
            "type": "authentication_error",
            "code": "invalid_api_key",
        }
        listed = mallory.session.get("/api/tokens").json()["tokens"][0]
        assert listed["revoked_at"] and listed["last_used_at"]
        with pytest.raises(openai.AuthenticationError):
            _openai(app_server, mallory.token + "x", address="127.0.0.3").models.list()
        for attempt in range(THROTTLE_LIMIT - 2):  # with the revoked and the tampered: the limit
            wrong = {"Authorization": f"Bearer ct_000000000000guess{attempt}"}
            assert http.get("/api/v1/models", headers=wrong).status_code == 401
        good = {"Authorization": f"Bearer {people['api-alice'].token}"}
        throttled = http.get("/api/v1/models", headers=good)  # even a good token now
        assert throttled.status_code == 429
        assert throttled.json()["error"]["type"] == "rate_limit_error"
        assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60
    # Other addresses are not throttled.
    with client(app_server, address="127.0.0.4", **good) as http:
        assert http.get("/api/v1/models").status_code == 200
    mallory.session.close()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 400, "Unknown model"),
        ({"model": MODEL_A_ID, "messages": []}, 400, "messages"),
        (
            {"model": MODEL_A_ID, "messages": [{"role": "assistant", "content": "x"}]},
            400,
            LAST_NOT_USER,
        ),
        (
            {
                "model": MODEL_A_ID,
                "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
            },
            400,
            ONLY_TEXT,
        ),
        ({"model": MODEL_A_ID, "messages": [{"role": "user", "content": "a\u0000"}]}, 400, "NUL"),
        ("not json", 400, "JSON object"),
        (
            {
                "model": MODEL_A_ID,
                "messages": [{"role": "user", "content": "x"}],
                "conversation_id": 1,
            },
            400,
            "conversation_id",
        ),
    ],
)
def test_malformed_requests_get_openai_errors_and_store_nothing(
    app_server: LiveServer, people: dict[str, Person], body: object, status: int, message: str
) -> None:
    alice = people["api-alice"]
    before = alice.session.get("/api/conversations").json()["conversations"]
    with client(app_server, Authorization=f"Bearer {alice.token}") as http:
        content = body if isinstance(body, str) else json.dumps(body)
        response = http.post("/api/v1/chat/completions", content=content)
        assert response.status_code == status
        error = response.json()["error"]
        assert message in error["message"] and error["type"] == "invalid_request_error"
    assert alice.session.get("/api/conversations").json()["conversations"] == before


def test_routes_and_failures_answer_in_openai_shape(
    app_server: LiveServer, fakes: Fakes, people: dict[str, Person]
) -> None:
    with client(app_server, Authorization=f"Bearer {people['api-alice'].token}") as http:
        listed = http.get("/api/v1/models")
        assert listed.status_code == 200 and "set-cookie" not in listed.headers  # no session
        unknown = http.post("/api/v1/embeddings", json={})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        wrong_method = http.get("/api/v1/chat/completions")
        assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
        too_big = http.post("/api/v1/chat/completions", content=b"x" * (3 * 1024 * 1024))
        assert too_big.status_code == 413 and too_big.json()["error"]["message"] == BODY_TOO_LARGE
        fakes.a.script = Script(fail="status", status=500)
        fakes.b.script = Script(fail="status", status=500)
        body = {"model": MODEL_A_ID, "messages": [{"role": "user", "content": "fail"}]}
        failed = http.post("/api/v1/chat/completions", json=body)
        assert failed.status_code == 502, failed.text
        assert failed.json()["error"]["type"] == "api_error"
    stream = _openai(app_server, people["api-alice"].token).chat.completions.create(
        model=MODEL_A_ID, messages=[{"role": "user", "content": "fail"}], stream=True
    )
    with pytest.raises(openai.APIError):  # the error event, after the headers went out
        list(stream)


def test_a_client_that_leaves_mid_stream_leaves_the_answer_stored_and_nothing_held(
    app_server: LiveServer, fakes: Fakes, people: dict[str, Person]
) -> None:
    fakes.a.script = Script(tokens=DEFAULT_TOKENS, delay=0.15)
    body = {"model": MODEL_A_ID, "stream": True, "messages": [{"role": "user", "content": "Bye"}]}
    with client(app_server, Authorization=f"Bearer {people['api-alice'].token}") as http:
        with http.stream("POST", "/api/v1/chat/completions", json=body) as response:
            conversation = f"/api/v1/conversations/{response.headers['X-Conversation-Id']}"
            lines = response.iter_lines()
            while '"content"' not in next(lines):  # the first token, then the client leaves
                pass
            runtime = people["api-root"].session.get("/admin/runtime.json").json()
            assert runtime["api_listeners"] == 1  # counted apart from the sockets
        deadline = time.monotonic() + 15
        while (answer := http.get(conversation).json()["messages"][-1])["is_generating"]:
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)
    assert answer["content"] == ANSWER and not answer["interrupted"]
    root = people["api-root"]
    deadline = time.monotonic() + 5
    while (held := root.session.get("/admin/runtime.json").json())["api_listeners"]:
        assert time.monotonic() < deadline, held  # no listener of the API left behind
        time.sleep(0.1)
