"""`python -m inference --model-id DIR` serves a saved model of any decoder-only family, batched.

For a few representative families (``tests.support.tiny_families``: GQA with q/k norms,
softcaps and sliding windows, mixture of experts, long RoPE), a tiny random model is saved with
the bundled tokenizer, the real server is started on it in a child process, and 8 greedy
`/generate` requests with different prompts are sent at once. Each answer's tokens must equal
transformers' ``generate`` on the same saved weights and prompt ids; the server must say it
serves the family with the transformers backend over the paged cache (its log line and
`/info`) and its `/metrics` must show steps of more than one sequence.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys

import httpx
import pytest
import torch

from bench.processes import free_port
from tests.support.server_process import ServerProcess
from tests.support.tiny_families import save_tiny_family

pytestmark = pytest.mark.slow  # a server start per family

SERVED_FAMILIES = ["qwen3", "gemma2", "qwen2_moe", "phi3"]
PROMPTS = [
    "Hello",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, in a land far away, there lived",
    "1, 2, 3, 4, 5,",
    "def fibonacci(n):",
    "Paris is the capital of",
    "A list of colours: red, green, blue, yellow, purple, orange and",
    "Why?",
]
NEW_TOKENS = 16
STARTUP_TIMEOUT_S = 240.0
REQUEST_TIMEOUT_S = 240.0
BATCH_GAUGE = re.compile(r"^tgi_batch_current_size (\S+)$", re.MULTILINE)
BACKEND_LOG = "with the transformers backend over the paged cache"


async def _generate_all(url: str) -> tuple[list[dict], float]:
    """The 8 answers, sent at once, and the largest batch `/metrics` showed meanwhile."""
    largest = 0.0
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:

        async def generate(prompt: str) -> dict:
            parameters = {
                "max_new_tokens": NEW_TOKENS,
                "do_sample": False,
                "details": True,
                "decoder_input_details": True,
            }
            response = await client.post(
                "/generate", json={"inputs": prompt, "parameters": parameters}
            )
            response.raise_for_status()
            return response.json()

        async def watch_batch(done: asyncio.Event) -> None:
            nonlocal largest
            while not done.is_set():
                found = BATCH_GAUGE.search((await client.get("/metrics")).text)
                largest = max(largest, float(found.group(1)) if found else 0.0)
                await asyncio.sleep(0.005)

        done = asyncio.Event()
        watcher = asyncio.create_task(watch_batch(done))
        try:
            answers = await asyncio.gather(*(generate(p) for p in PROMPTS))
        finally:
            done.set()
            await watcher
    return answers, largest


def _reference(model_dir, prompt_ids: list[int]) -> list[int]:
    """transformers' greedy ``generate`` on the saved weights (eager attention)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([prompt_ids]),
            attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
        )
    return out[0, len(prompt_ids) :].tolist()


@pytest.mark.parametrize("family", SERVED_FAMILIES)
def test_a_saved_family_model_is_served_batched_over_http(family, tmp_path):
    model_dir = save_tiny_family(family, tmp_path / family)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "inference", "--model-id", str(model_dir), "--port", str(port)]
    argv += ["--dtype", "float32", "--device", "cpu", "--quantize", "none"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    server = ServerProcess(argv, env, url + "/health", log_path=tmp_path / "server.log")
    try:
        server.start().wait_ready(STARTUP_TIMEOUT_S)
        answers, largest_batch = asyncio.run(_generate_all(url))
        info = httpx.get(url + "/info").json()
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text(errors="replace")

    assert BACKEND_LOG in log, server.log()
    assert info["model_runner"] == "transformers" and info["model_runner_reason"], info
    assert largest_batch > 1, f"no step ran more than one sequence:\n{server.log()}"
    torch.set_num_threads(1)
    for prompt, answer in zip(PROMPTS, answers, strict=True):
        details = answer["details"]
        prompt_ids = [t["id"] for t in details["prefill"]]
        tokens = [t["id"] for t in details["tokens"]]
        assert tokens == _reference(model_dir, prompt_ids), (family, prompt)
