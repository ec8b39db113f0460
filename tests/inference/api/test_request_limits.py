"""What a request body may be: at most `--payload-limit` bytes (413 before it is parsed), JSON
as TGI reads it (no NaN or infinities, however spelled: 422), and however big, never a stall
of the event loop that serves every other request."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from inference.api import create_app
from inference.api.docs import OPENAPI_URL
from inference.api.errors import PAYLOAD_TOO_LARGE
from inference.api.schemas import GenerateParameters
from inference.api.validation import Validator
from inference.config import DEFAULT_PAYLOAD_LIMIT, ServerConfig
from tests.inference.api.conftest import LIMITS, tiny_engine
from tests.inference.live_server import LiveServer, start_server

JSON = {"Content-Type": "application/json"}
TOO_LARGE = {
    "error": PAYLOAD_TOO_LARGE.format(DEFAULT_PAYLOAD_LIMIT),
    "error_type": "payload_too_large",
}
ROUTES = ["/generate", "/generate_stream", "/", "/v1/chat/completions", "/v1/completions"]
HEALTH_LATENCY_S = 0.5  # generous: an idle /health answers in about a millisecond


def body_for(path: str, parameters: str) -> bytes:
    """A body for `path` whose sampling knobs are the raw JSON text `parameters`."""
    if path == "/v1/chat/completions":
        return b'{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, %s}' % (
            parameters.encode()
        )
    if path == "/v1/completions":
        return b'{"prompt": "Hi", "max_tokens": 2, %s}' % parameters.encode()
    return b'{"inputs": "Hi", "parameters": {"max_new_tokens": 2, %s}}' % parameters.encode()


def filler(size: int) -> bytes:
    """A valid `/generate` body of exactly `size` bytes (padded in a key the server ignores)."""
    head, tail = b'{"inputs": "Hi", "parameters": {"max_new_tokens": 1}, "pad": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


# ---------------------------------------------------------------------------- payload limit


@pytest.mark.parametrize("path", [*ROUTES, "/tokenize", "/invocations", "/chat_tokenize"])
def test_a_body_over_the_default_limit_is_refused_unread_with_413(url, path):
    """10 MB, as in the report: refused from its Content-Length, in TGI's error shape."""
    started = time.monotonic()
    response = httpx.post(url + path, content=filler(10_000_000), headers=JSON, timeout=60)
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
    assert time.monotonic() - started < 5


def test_a_chunked_body_is_cut_off_at_the_limit(url):
    """No Content-Length: the body is counted as it arrives and refused once over."""
    body = filler(DEFAULT_PAYLOAD_LIMIT + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = httpx.post(url + "/generate", content=chunks(), headers=JSON, timeout=60)
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


def test_a_chunked_body_within_the_limit_is_served(url):
    body = json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 2}}).encode()
    response = httpx.post(url + "/generate", content=iter([body[:7], body[7:]]), headers=JSON)
    assert response.status_code == 200 and response.json()["generated_text"]


@pytest.fixture(scope="module")
def small_limit_server() -> Iterator[LiveServer]:
    live = start_server(create_app(tiny_engine(), ServerConfig(engine=LIMITS, payload_limit=1000)))
    live.wait_until_ready()
    yield live
    live.stop()


def test_the_limit_is_configurable_and_exact(small_limit_server):
    url = small_limit_server.url
    at_limit = httpx.post(url + "/generate", content=filler(1000), headers=JSON, timeout=60)
    assert at_limit.status_code == 200
    over = httpx.post(url + "/generate", content=filler(1001), headers=JSON)
    assert over.status_code == 413
    assert over.json() == {
        "error": PAYLOAD_TOO_LARGE.format(1000),
        "error_type": "payload_too_large",
    }


def test_every_post_route_documents_413(url):
    document = httpx.get(url + OPENAPI_URL).json()
    for path, methods in document["paths"].items():
        if "post" in methods:
            assert "413" in methods["post"]["responses"], path


# ------------------------------------------------------------------------ non-finite numbers

NON_FINITE = [
    *(f'"{name}": {value}' for name in ("temperature", "top_p") for value in ("NaN", "Infinity")),
    '"temperature": -Infinity',
    '"temperature": 1e999',
    '"temperature": "NaN"',
    '"top_p": "Infinity"',
]
TGI_ONLY = ['"typical_p": NaN', '"repetition_penalty": NaN', '"repetition_penalty": "NaN"']


@pytest.mark.parametrize("parameters", NON_FINITE)
@pytest.mark.parametrize("path", ROUTES)
def test_non_finite_numbers_are_refused_with_422_on_every_route(url, path, parameters):
    response = httpx.post(url + path, content=body_for(path, parameters), headers=JSON)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert payload["error_type"] == "validation" and set(payload) == {"error", "error_type"}


@pytest.mark.parametrize("parameters", TGI_ONLY)
@pytest.mark.parametrize("path", ["/generate", "/generate_stream", "/"])
def test_tgi_parameters_refuse_nan_too(url, path, parameters):
    response = httpx.post(url + path, content=body_for(path, parameters), headers=JSON)
    assert response.status_code == 422
    assert response.json()["error_type"] == "validation"


def test_the_sagemaker_route_refuses_nan(url):
    response = httpx.post(url + "/invocations", content=body_for("/", '"top_p": NaN'), headers=JSON)
    assert (response.status_code, response.json()["error_type"]) == (422, "validation")


@pytest.mark.parametrize("name", ["temperature", "top_p", "typical_p", "repetition_penalty"])
def test_the_validator_itself_refuses_nan(name):
    """The last gate: a NaN that got past the parser still fails every range check."""
    from transformers import AutoTokenizer

    from inference.api.errors import ValidationFailed
    from tests.support.tiny_model import bundled_tokenizer_path

    validator = Validator(AutoTokenizer.from_pretrained(bundled_tokenizer_path()), LIMITS)
    parameters = GenerateParameters.model_construct(**{name: float("nan")})
    with pytest.raises(ValidationFailed):
        validator.validate("Hello", parameters)


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": "\xff\xfe"}',
        b'{"inputs": "a\\ud800b"}',
        b'{"inputs": "Hi", "x": 1' + b"0" * 5000 + b"}",
    ],
)
def test_bodies_serde_refuses_are_422_not_400_or_500(url, body):
    """Invalid UTF-8, a lone surrogate, an over-long integer: malformed JSON, in TGI's shape."""
    response = httpx.post(url + "/generate", content=body, headers=JSON)
    assert (response.status_code, response.json()["error_type"]) == (422, "validation")


# ------------------------------------------------------------------- off the event loop

BIG_REQUEST = """
import httpx, json, sys, time
path = sys.argv[2]
body = {"inputs": ("word " * 380_000)[:1_900_000], "parameters": {"max_new_tokens": 2}}
start = time.time()
response = httpx.post(sys.argv[1] + path, json=body, timeout=300)
print(json.dumps({"start": start, "end": time.time(), "status": response.status_code}))
"""


@pytest.mark.parametrize(("path", "status"), [("/generate", 422), ("/tokenize", 200)])
def test_a_big_request_does_not_stall_health_checks(url, path, status):
    """A 1.9 MB prompt (within the 2 MB limit) takes a second or more to tokenise; meanwhile
    `/health` keeps answering at once. The big request comes from another process, so the
    only thing it shares with this test's client is the server."""
    client = subprocess.Popen(
        [sys.executable, "-c", BIG_REQUEST, url, path], stdout=subprocess.PIPE, text=True
    )
    probes: list[tuple[float, float]] = []
    with httpx.Client(timeout=60) as http:
        while client.poll() is None:
            sent = time.time()
            assert http.get(url + "/health").status_code == 200
            probes.append((sent, time.time() - sent))
            time.sleep(0.01)
    big = json.loads(client.stdout.read())
    assert big["status"] == status
    during = [latency for sent, latency in probes if big["start"] <= sent <= big["end"]]
    assert len(during) >= 5, "the probes did not overlap the big request"
    assert max(during) < HEALTH_LATENCY_S, max(during)
