"""`--api-key` and `--cors-allow-origin` on a real server: the key guards every generating
route (TGI's error shape on refusal), the health checks stay open, and browsers get no
cross-origin access unless an origin is named."""

from __future__ import annotations

import hmac
import logging
import stat
from collections.abc import Iterator

import httpx
import pytest

from inference.api import auth, create_app
from inference.api.errors import UNAUTHORIZED
from inference.cli import parse_args
from inference.config import ServerConfig
from inference.keyfile import ensure_key_file, main
from tests.inference.api.conftest import LIMITS, tiny_engine
from tests.inference.live_server import LiveServer, start_server

KEY = "s3cret-key-for-tests"
ORIGIN = "http://chat.example.test"
GENERATE = {"inputs": "Hello", "parameters": {"max_new_tokens": 2}}
CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def keyed() -> Iterator[LiveServer]:
    config = ServerConfig(engine=LIMITS, api_key=KEY, cors_allow_origins=(ORIGIN,))
    live = start_server(create_app(tiny_engine(), config))
    live.wait_until_ready()
    yield live
    live.stop()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", GENERATE),
        ("/generate_stream", GENERATE),
        ("/", GENERATE),
        ("/v1/chat/completions", CHAT),
        ("/v1/completions", {"prompt": "Hi", "max_tokens": 2}),
        ("/tokenize", GENERATE),
        ("/chat_tokenize", CHAT),
        ("/invocations", GENERATE),
    ],
)
def test_every_generating_route_needs_the_key(keyed, path, body):
    for headers in ({}, bearer("wrong"), {"Authorization": KEY}, bearer(KEY[:-1])):
        response = httpx.post(keyed.url + path, json=body, headers=headers, timeout=60)
        assert response.status_code == 401, (path, headers)
        assert response.json() == {"error": UNAUTHORIZED, "error_type": "unauthorized"}
        assert response.headers["www-authenticate"] == "Bearer"
    response = httpx.post(keyed.url + path, json=body, headers=bearer(KEY), timeout=60)
    assert response.status_code == 200, response.text


def test_the_scheme_is_case_insensitive_but_the_key_is_not(keyed):
    lower = {"Authorization": "bearer " + KEY}
    assert httpx.post(keyed.url + "/generate", json=GENERATE, headers=lower).status_code == 200
    upper = httpx.post(keyed.url + "/generate", json=GENERATE, headers=bearer(KEY.upper()))
    assert upper.status_code == 401


@pytest.mark.parametrize("path", ["/health", "/ping", "/info", "/metrics", "/v1/models", "/docs"])
def test_health_info_and_docs_stay_open(keyed, path):
    response = httpx.get(keyed.url + path)
    assert response.status_code == 200, path


def test_the_key_is_compared_in_constant_time(keyed, monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    refused = httpx.post(keyed.url + "/generate", json=GENERATE, headers=bearer("x"))
    assert refused.status_code == 401
    assert calls == [(b"x", KEY.encode())]


def test_without_a_key_nothing_is_asked(url):
    assert httpx.post(url + "/generate", json=GENERATE, timeout=60).status_code == 200


def test_cross_origin_preflight_is_refused_by_default(url):
    preflight = httpx.options(
        url + "/generate",
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = httpx.get(url + "/info", headers={"Origin": "http://example.test"})
    assert "access-control-allow-origin" not in simple.headers


def test_a_named_origin_may_call_with_the_key(keyed):
    preflight = httpx.options(
        keyed.url + "/generate",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(
        keyed.url + "/generate",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert other.status_code == 400
    refused = httpx.post(keyed.url + "/generate", json=GENERATE, headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN  # the page can read why


def test_flags_and_environment():
    config, _ = parse_args([], environ={})
    assert config.api_key is None and config.cors_allow_origins == ()
    env = {"API_KEY": KEY, "CORS_ALLOW_ORIGIN": "http://a.test, http://b.test"}
    config, _ = parse_args([], environ=env)
    assert config.api_key == KEY
    assert config.cors_allow_origins == ("http://a.test", "http://b.test")
    argv = ["--api-key", "other", "--cors-allow-origin", "http://c.test"]
    config, _ = parse_args([*argv, "--cors-allow-origin", "http://d.test,http://e.test"], env)
    assert config.api_key == "other"
    assert config.cors_allow_origins == ("http://c.test", "http://d.test", "http://e.test")
    assert "other" not in repr(config)


def test_the_key_is_never_logged(monkeypatch, caplog):
    import inference.cli as cli

    class Stop(Exception):
        pass

    def no_server(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(cli, "configure_logging", lambda: None)
    monkeypatch.setattr(cli, "create_app", no_server, raising=False)
    monkeypatch.setattr("inference.api.app.create_app", no_server)
    monkeypatch.setenv("API_KEY", KEY)
    with caplog.at_level(logging.INFO), pytest.raises(Stop):
        cli.main([])
    assert "API key required" in caplog.text
    assert KEY not in caplog.text


def test_the_key_file_is_made_once_and_private(tmp_path):
    path = tmp_path / "var" / "inference.key"
    assert main([str(path)]) == 0
    key = path.read_text().strip()
    assert len(key) >= 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_key_file(path) == key  # kept, not replaced
    other = tmp_path / "other.key"
    assert ensure_key_file(other) != key
