"""The operations routes: `/healthz`, `/readyz` and `/metrics` over HTTP from a real daphne
process (models on a fake TGI and on a closed port), and the counters after answers streamed
in-process through the fake endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import AsyncClient

from chatui import metrics, ops
from tests.chatui.fake_endpoints import FakeTGI, Script
from tests.chatui.helpers import MODEL_A, connect, send_and_finish, setup_owner
from tests.e2e.server import LiveServer, free_port

TOKEN = "metrics-token-for-tests"


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # NOTE: nothing listens on a fresh free port


def model(model_id: str, url: str) -> dict[str, Any]:
    return {"id": model_id, "name": f"org/{model_id}", "endpoints": [{"type": "tgi", "url": url}]}


@pytest.fixture(scope="module")
def web() -> Iterator[LiveServer]:
    tgi = FakeTGI(Script(tokens=["Hi"])).start()
    models = [model("up", tgi.url), model("down", closed_url())]
    # Loopback is not in the list: only the token lets this test in.
    env = {"METRICS_ALLOW_IPS": "192.0.2.0/24", "METRICS_TOKEN": TOKEN}
    with LiveServer(models, extra_env=env) as server:
        yield server
    tgi.stop()


def test_healthz_answers(web):
    response = httpx.get(web.url + "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_when_one_model_answers(web):
    response = httpx.get(web.url + "/readyz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "status": ops.READY,
        "checks": {"database": True, "channel_layer": True, "models": {"up": True, "down": False}},
    }
    assert "127.0.0.1" not in response.text  # names no host


def test_metrics_need_the_token_off_the_allow_list(web):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = httpx.get(web.url + "/metrics", headers=headers)
        assert response.status_code == 403
        assert response.json() == {"error": ops.ERR_METRICS_FORBIDDEN}
    response = httpx.get(web.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "chatui_open_websockets 0.0" in response.text


@pytest.mark.django_db(transaction=True)
async def test_readyz_is_503_when_no_model_answers(configure):
    configure(MODELS=json.dumps([model("down", closed_url())]))
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == ops.NOT_READY
    assert response.json()["checks"]["models"] == {"down": False}


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db(transaction=True)
async def test_an_answer_is_counted(endpoints, settings):
    settings.METRICS_ALLOW_IPS = ["127.0.0.1"]  # the test client's address
    endpoint = f"tgi:{endpoints.tgi.url}/"
    labels = {"model": MODEL_A, "endpoint": endpoint}
    started = sample("chatui_answers_started_total", **labels)
    ttft = sample("chatui_time_to_first_token_seconds_count", model=MODEL_A)
    await AsyncClient().get("/metrics")  # the gauge is set from the hub when /metrics is read
    sockets = sample("chatui_open_websockets")  # other tests in this process may hold some
    owner, conversation_id = await setup_owner()
    socket = await connect(owner, conversation_id)
    await send_and_finish(socket, "Hello?")
    page = (await AsyncClient().get("/metrics")).content.decode()
    assert f"chatui_open_websockets {sockets + 1}" in page
    await socket.disconnect()
    assert sample("chatui_answers_started_total", **labels) == started + 1
    assert sample("chatui_time_to_first_token_seconds_count", model=MODEL_A) == ttft + 1
    assert "chatui_running_answers" in page


@pytest.mark.django_db(transaction=True)
async def test_a_failover_and_a_failure_are_counted(configure):
    dead = closed_url()
    configure(MODELS=json.dumps([model(MODEL_A, dead)]), LLM_SUMMARIZATION="false")
    failed = sample("chatui_answers_failed_total", model=MODEL_A, endpoint=f"tgi:{dead}/")
    failovers = sample("chatui_endpoint_failovers_total", model=MODEL_A, endpoint=f"tgi:{dead}/")
    owner, conversation_id = await setup_owner()
    socket = await connect(owner, conversation_id)
    await send_and_finish(socket, "Hello?")
    await socket.disconnect()
    assert sample("chatui_endpoint_failovers_total", model=MODEL_A, endpoint=f"tgi:{dead}/") == (
        failovers + 1
    )
    assert sample("chatui_answers_failed_total", model=MODEL_A, endpoint=f"tgi:{dead}/") == (
        failed + 1
    )


def test_the_bundled_model_sends_the_inference_key():
    from chatui.models_config import load_app_config

    keyed = load_app_config({"INFERENCE_API_KEY": "k3y"}).models[0].endpoints[0]
    assert keyed.authorization == "Bearer k3y"
    assert load_app_config({}).models[0].endpoints[0].authorization is None
