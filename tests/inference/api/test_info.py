"""`/info`, `/health`, `/metrics`, `/docs` and the OpenAPI document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from inference.api.docs import OPENAPI_URL
from tests.inference.api.conftest import LIMITS

TGI_OPENAPI = Path(__file__).parent / "fixtures" / "tgi-openapi.json"  # TGI 3.3.6's own
TGI_SCHEMAS = (
    "GenerateRequest",
    "GenerateParameters",
    "GenerateResponse",
    "CompatGenerateRequest",
    "Details",
    "StreamDetails",
    "StreamResponse",
    "Token",
    "PrefillToken",
    "BestOfSequence",
    "FinishReason",
    "ErrorResponse",
    "Info",
    "SimpleToken",
    "ChatRequest",
    "ChatCompletion",
    "ChatCompletionChunk",
    "CompletionRequest",
    "CompletionFinal",
    "Chunk",
    "Usage",
    "ModelInfo",
)
TGI_INFO_FIELDS = (
    "model_id",
    "model_sha",
    "model_pipeline_tag",
    "max_concurrent_requests",
    "max_best_of",
    "max_stop_sequences",
    "max_input_tokens",
    "max_total_tokens",
    "validation_workers",
    "max_client_batch_size",
    "router",
    "version",
    "model_dtype",
    "model_device_type",
    "max_input_length",
    "max_batch_total_tokens",
    "waiting_served_ratio",
    "max_waiting_tokens",
    "max_batch_size",
    "sha",
    "docker_label",
)


def test_health_is_empty_200_when_ready(url):
    response = httpx.get(url + "/health")
    assert response.status_code == 200 and response.content == b""


def test_info_has_tgi_fields_and_the_limits(url):
    info = httpx.get(url + "/info").json()
    assert set(TGI_INFO_FIELDS) <= set(info)
    assert info["model_id"] == "tiny-random-llama"
    assert info["model_device_type"] == "cpu"
    assert info["max_concurrent_requests"] == LIMITS.max_concurrent_requests
    assert info["max_input_tokens"] == info["max_input_length"] == LIMITS.max_input_tokens
    assert info["max_total_tokens"] == LIMITS.max_total_tokens
    assert info["max_batch_total_tokens"] == LIMITS.max_batch_total_tokens
    assert info["model_pipeline_tag"] == "text-generation"
    assert info["speculate"] == LIMITS.speculate  # TGI's field (0: no speculative decoding)


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} missing"
    return float(match.group(1))


def test_metrics_use_tgi_names_and_count(url):
    before = httpx.get(url + "/metrics").text
    for name in (
        "tgi_request_count",
        "tgi_request_success",
        "tgi_queue_size",
        "tgi_batch_current_size",
        "tgi_batch_current_max_tokens",
        "tgi_batch_total_tokens",
        "speculative_draft_tokens",
        "speculative_accepted_tokens",
    ):
        assert f"\n{name} " in "\n" + before
    for name in (
        "tgi_request_duration",
        "tgi_request_validation_duration",
        "tgi_request_queue_duration",
        "tgi_request_inference_duration",
        "tgi_request_mean_time_per_token_duration",
        "tgi_request_generated_tokens",
        "tgi_request_input_length",
    ):
        assert f"# TYPE {name} histogram" in before

    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 3, "details": True}}
    generated = httpx.post(url + "/generate", json=body, timeout=60).json()
    httpx.post(url + "/generate", json={"inputs": "Hello", "parameters": {"top_k": -1}})
    after = httpx.get(url + "/metrics").text

    assert metric(after, "tgi_request_count") == metric(before, "tgi_request_count") + 2
    assert metric(after, "tgi_request_success") == metric(before, "tgi_request_success") + 1
    failures = 'tgi_request_failure{err="validation"}'
    previous = metric(before, failures) if failures in before else 0.0
    assert metric(after, "tgi_request_failure", '{err="validation"}') == previous + 1
    tokens = "tgi_request_generated_tokens_sum"
    count = generated["details"]["generated_tokens"]
    assert metric(after, tokens) - metric(before, tokens) == count


def test_openapi_document_matches_tgi_routes_and_names(url):
    """Every route TGI documents is served and documented here, and no other but `GET /` (TGI
    answers health checks there without documenting it)."""
    ours = httpx.get(url + OPENAPI_URL).json()
    tgi = json.loads(TGI_OPENAPI.read_text())
    routes = {(m, p) for p, ops in ours["paths"].items() for m in ops}
    assert routes == {(m, p) for p, ops in tgi["paths"].items() for m in ops} | {("get", "/")}
    for path, ops in tgi["paths"].items():
        for method, op in ops.items():
            assert ours["paths"][path][method]["operationId"] == op["operationId"]
    assert set(TGI_SCHEMAS) <= set(ours["components"]["schemas"])
    generate = ours["paths"]["/generate"]["post"]["responses"]
    for status in ("422", "424", "429"):
        assert generate[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    params = ours["components"]["schemas"]["GenerateParameters"]["properties"]
    assert set(tgi["components"]["schemas"]["GenerateParameters"]["properties"]) <= set(params)


def test_docs_page_uses_only_local_assets(url):
    page = httpx.get(url + "/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by this server"
        assert httpx.get(url + asset).status_code == 200
    assert "http://" not in page.text.replace(url, "") and "https://" not in page.text
    assert OPENAPI_URL in page.text


def test_browsers_get_no_cross_origin_access_by_default(url):
    preflight = httpx.options(
        url + "/generate",
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400  # `--cors-allow-origin` names none
    assert "access-control-allow-origin" not in preflight.headers
