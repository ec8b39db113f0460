"""The soak's stack, as production runs it: the model server on the bundled model, the web
processes on Redis and a scratch Postgres database with a staff user, and the priming of the
model server with its largest steps before anything is measured.

Must not import Django or `chatui`: the stack is reached only over HTTP and subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.chat_stack import Databases, WebProcess, web_env
from bench.processes import PROJECT_ROOT, VENV_BIN, migrate
from bench.servers import RunningServer, our_server
from bench.soak_checks import StaffClient
from bench.soak_hostile import MAX_MESSAGE_LENGTH
from bench.soak_memory import MEMORY_DEBUG_ENV

MODEL_DIR = PROJECT_ROOT / "var" / "models" / "smollm2-135m-instruct"
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TRUNCATE = 1536  # the model's `truncate`: the longest prompt the app sends
NUM_PRIMING_PROMPTS = 4  # prompts of TRUNCATE tokens at once: the largest prefill steps
WEB_START_TIMEOUT_S = 300.0  # a loaded machine starts Django slowly; a soak has time
STAFF = ("soak-admin", secrets.token_urlsafe(12))


@dataclass
class Stack:
    """The running processes and what the checks need to reach them."""

    model: RunningServer
    web: list[WebProcess]
    database: str
    database_url: str
    staff: StaffClient = field(default_factory=StaffClient)

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self.web]


def models_json(model_url: str, max_new_tokens: int) -> str:
    """The bundled model's entry, with short answers (so that Continue has work)."""
    parameters = {"temperature": 0.7, "top_p": 0.95, "repetition_penalty": 1.1}
    parameters |= {"truncate": TRUNCATE}
    parameters |= {"max_new_tokens": max_new_tokens, "stop": ["<|im_end|>"]}
    model = {"id": MODEL_ID, "name": MODEL_ID, "parameters": parameters}
    return json.dumps([{**model, "endpoints": [{"type": "tgi", "url": model_url}]}])


def start(args: argparse.Namespace, databases: Databases, log_dir: Path) -> Stack:
    spec = our_server(args.model_dir, args.dtype)
    spec.env.update(MEMORY_DEBUG_ENV)  # the memory report each row prints
    model = RunningServer(spec, log_dir / "inference.log")
    name = databases.create()
    env = web_env(
        database_url=databases.url(name),
        redis_url=args.redis_url if args.web_processes > 1 else "",
        endpoint_url=model.base_url,
    )
    env["MODELS"] = models_json(model.base_url, args.max_new_tokens)
    env["USAGE_LIMITS"] = json.dumps(
        {"messageLength": MAX_MESSAGE_LENGTH, "messagesPerMinute": 0, "concurrentGenerations": 2}
    )
    migrate(env)
    create_staff = ["createsuperuser", "--noinput", "--username", STAFF[0], "--email", "s@x.org"]
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *create_staff],
        cwd=PROJECT_ROOT,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": STAFF[1]},
        check=True,
        capture_output=True,
    )
    web = [WebProcess(env, log_dir / f"web-{i}.log") for i in range(args.web_processes)]
    stack = Stack(model, web, name, databases.url(name))
    try:
        for process in web:
            process.wait_ready(WEB_START_TIMEOUT_S)
        model.wait_ready()
        stack.staff.login(stack.urls[0], *STAFF)
    except BaseException:
        stop(stack)  # NOTE: the caller never sees this stack, so it cannot stop it
        raise
    return stack


def stop(stack: Stack) -> None:
    """Stop every process of the stack (the scratch database is the caller's to drop)."""
    stack.staff.close()
    for process in stack.web:
        process.stop()
    stack.model.stop()


def prime_model_server(stack: Stack, max_new_tokens: int) -> None:
    """The largest steps the soak can cause (prompts at the truncation limit, several at once)
    before measuring: memory the allocator keeps after its largest step is not a leak."""
    body = {
        "inputs": "hello " * TRUNCATE,
        "parameters": {"max_new_tokens": max_new_tokens, "truncate": TRUNCATE},
    }

    async def prime() -> None:
        async with httpx.AsyncClient(timeout=600) as client:
            sent = [
                client.post(stack.model.base_url + "/generate", json=body)
                for _ in range(NUM_PRIMING_PROMPTS)
            ]
            for response in await asyncio.gather(*sent):
                response.raise_for_status()

    asyncio.run(prime())
