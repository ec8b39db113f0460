"""`POST /invocations`: SageMaker's route dispatches on the body's shape."""

from __future__ import annotations

import httpx

MESSAGES = [{"role": "user", "content": "What is Deep Learning?"}]


def test_sagemaker_route_dispatches_on_the_body(url):
    generate_body = {"inputs": "Hi", "parameters": {"max_new_tokens": 2}}
    generate = httpx.post(url + "/invocations", json=generate_body)
    assert isinstance(generate.json(), list)
    chat_body = {"messages": MESSAGES, "max_tokens": 2}
    assert httpx.post(url + "/invocations", json=chat_body).json()["object"] == "chat.completion"
    completion = {"prompt": "Hi", "max_tokens": 2}
    assert httpx.post(url + "/invocations", json=completion).json()["object"] == "text_completion"
    bad = httpx.post(url + "/invocations", json={"parameters": {}})
    assert bad.status_code == 422 and set(bad.json()) == {"error", "error_type"}
