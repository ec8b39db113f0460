"""`POST /generate` and `POST /` (non-streaming) over a real socket."""

from __future__ import annotations

import httpx

TIMING_HEADERS = (
    "x-compute-time",
    "x-total-time",
    "x-validation-time",
    "x-queue-time",
    "x-inference-time",
    "x-time-per-token",
)


def generate(url: str, inputs: str = "Hello there", **parameters) -> httpx.Response:
    body = {"inputs": inputs, "parameters": parameters}
    return httpx.post(url + "/generate", json=body, timeout=120)


def test_generate_returns_text_without_details_by_default(url):
    response = generate(url, max_new_tokens=5)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"generated_text"}
    assert isinstance(body["generated_text"], str)


def test_details_carry_tokens_whose_texts_make_the_generated_text(url):
    body = generate(url, max_new_tokens=6, details=True).json()
    details = body["details"]
    assert details["finish_reason"] in ("length", "eos_token")
    assert details["generated_tokens"] == len(details["tokens"])
    assert details["prefill"] == []
    assert details["seed"] is None  # greedy: TGI reports a seed only when sampling
    assert "top_tokens" not in details and "best_of_sequences" not in details
    for token in details["tokens"]:
        assert set(token) == {"id", "text", "logprob", "special"}
    text = "".join(t["text"] for t in details["tokens"] if not t["special"])
    assert text == body["generated_text"]


def test_length_finish_generates_exactly_max_new_tokens(url):
    details = generate(url, max_new_tokens=7, details=True).json()["details"]
    if details["finish_reason"] == "length":
        assert details["generated_tokens"] == 7
    assert details["generated_tokens"] <= 7


def test_greedy_is_deterministic_and_sampling_is_seeded(url):
    first = generate(url, max_new_tokens=8).json()["generated_text"]
    assert generate(url, max_new_tokens=8).json()["generated_text"] == first
    sampled = generate(url, max_new_tokens=8, do_sample=True, seed=42, details=True).json()
    again = generate(url, max_new_tokens=8, do_sample=True, seed=42, details=True).json()
    assert sampled["generated_text"] == again["generated_text"]
    assert sampled["details"]["seed"] == 42


def test_temperature_zero_means_greedy(url):
    greedy = generate(url, max_new_tokens=8).json()["generated_text"]
    zero = generate(url, max_new_tokens=8, do_sample=True, temperature=0, details=True).json()
    assert zero["generated_text"] == greedy
    assert zero["details"]["seed"] is None


def test_top_p_one_is_accepted_as_no_top_p(url):
    assert generate(url, max_new_tokens=2, top_p=1.0).status_code == 200


def test_absent_parameters_sample_as_tgi_does(url):
    response = httpx.post(url + "/generate", json={"inputs": "Hello"}, timeout=120)
    assert response.status_code == 200
    assert isinstance(response.json()["generated_text"], str)


def test_top_n_tokens_and_decoder_input_details(url):
    body = generate(
        url, "Hello there friend", max_new_tokens=3, top_n_tokens=2, decoder_input_details=True
    ).json()
    details = body["details"]  # decoder_input_details implies details
    assert len(details["top_tokens"]) == details["generated_tokens"]
    assert all(len(step) == 2 for step in details["top_tokens"])
    prefill = details["prefill"]
    assert "".join(t["text"] for t in prefill) == "Hello there friend"
    assert prefill[0]["logprob"] is None
    assert all(isinstance(t["logprob"], float) for t in prefill[1:])


def test_return_full_text_prepends_the_prompt(url):
    plain = generate(url, "Once upon", max_new_tokens=4).json()["generated_text"]
    full = generate(url, "Once upon", max_new_tokens=4, return_full_text=True).json()
    assert full["generated_text"] == "Once upon" + plain


def test_truncate_keeps_the_last_input_tokens(url):
    long_prompt = "one two three four five six seven eight nine ten"
    truncated = generate(url, long_prompt, max_new_tokens=4, truncate=2)
    assert truncated.headers["x-prompt-tokens"] == "2"
    tail = generate(url, " nine ten", max_new_tokens=4)
    assert truncated.json()["generated_text"] == tail.json()["generated_text"]


def test_stop_sequence_ends_generation(url):
    reference = generate(url, max_new_tokens=12, details=True).json()
    tokens = [t["text"] for t in reference["details"]["tokens"] if t["text"].strip()]
    stop = tokens[1]
    stopped = generate(url, max_new_tokens=12, stop=[stop], details=True).json()
    assert stopped["details"]["finish_reason"] == "stop_sequence"
    assert stopped["generated_text"].endswith(stop)
    assert stopped["details"]["generated_tokens"] < reference["details"]["generated_tokens"]


def test_best_of_returns_the_best_and_the_others(url):
    body = generate(url, max_new_tokens=4, best_of=2, do_sample=True, details=True).json()
    details = body["details"]
    others = details["best_of_sequences"]
    assert len(others) == 1
    assert others[0]["seed"] != details["seed"]

    def total(tokens):
        return sum(t["logprob"] for t in tokens)

    assert total(details["tokens"]) >= total(others[0]["tokens"])


def test_headers_follow_tgi(url):
    response = generate(url, "Hello there", max_new_tokens=5, details=True)
    headers = response.headers
    assert headers["x-compute-type"] == "cpu"
    assert headers["x-compute-characters"] == str(len("Hello there"))
    assert headers["x-prompt-tokens"] == "2"
    assert headers["x-generated-tokens"] == str(response.json()["details"]["generated_tokens"])
    for name in TIMING_HEADERS:
        assert float(headers[name]) >= 0


def test_compat_route_answers_a_list(url):
    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 3, "details": True}}
    response = httpx.post(url + "/", json=body, timeout=120)
    assert response.status_code == 200
    payload = response.json()
    assert isinstance(payload, list) and len(payload) == 1
    assert payload[0]["details"]["generated_tokens"] <= 3


def test_tokenize_gives_ids_with_offsets(url):
    response = httpx.post(url + "/tokenize", json={"inputs": "Hello world"})
    tokens = response.json()
    assert [t["text"] for t in tokens] == ["Hello", " world"]
    assert [(t["start"], t["stop"]) for t in tokens] == [(0, 5), (5, 11)]


def test_chat_tokenize_applies_the_template(url):
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    payload = httpx.post(url + "/chat_tokenize", json=body).json()
    assert "Hi" in payload["templated_text"]
    assert payload["templated_text"].endswith("<|im_start|>assistant\n")
    assert "".join(t["text"] for t in payload["tokenize_response"]) == payload["templated_text"]
