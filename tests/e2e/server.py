"""A real daphne process serving the chat app against fake TGI servers, for browser tests.

`LiveServer` owns a temporary SQLite database, the `MODELS` value pointing at the fakes, the
migrate step and the daphne subprocess. It imports nothing from `chatui` (the app runs in the
child process only), so the browser sees exactly what a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.processes import free_port, migrate, web_argv
from tests.support.server_process import ServerProcess

STARTUP_TIMEOUT_S = 60.0

APP_NAME = "Test Chat"
MODEL_A_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
MODEL_A_NAME = "SmolLM2 135M"
MODEL_B_ID = "test/second-model"
MODEL_B_NAME = "Second Model"
DISCLAIMER = "Generated content may be inaccurate or false."
ISOLATED_VARIABLES = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "TASK_MODEL",
    "OLD_MODELS",
    "USAGE_LIMITS",
    "MESSAGES_BEFORE_LOGIN",
    "OPENID_CONFIG",
    "OPENID_PROVIDER_URL",
    "OPENID_CLIENT_ID",
    "OPENID_CLIENT_SECRET",
    "OPENID_SCOPES",
    "OPENID_NAME_CLAIM",
    "OPENID_TOLERANCE",
    "OPENID_RESOURCE",
    "OPENID_ADMIN_CLAIM",
    "OPENID_ADMIN_VALUES",
    "ADMIN_USERS",
    "AUTOMATIC_LOGIN",
    "ALLOW_LOCAL_LOGIN",
    "ALLOW_SIGNUP",
    "ALLOWED_USER_EMAILS",
    "ALLOWED_USER_DOMAINS",
    "CSRF_TRUSTED_ORIGINS",
    "MCP_SERVERS",
    "MCP_ALLOW_USER_SERVERS",
    "MCP_ALLOW_PRIVATE_URLS",
)
EXAMPLE_TITLE = "Write an email"
EXAMPLE_PROMPT = "Write an email to my boss asking for a day off."


def models_config(url_a: str, url_b: str) -> list[dict[str, Any]]:
    """Two listed models, each served by its own fake TGI."""
    return [
        {
            "name": MODEL_A_ID,
            "displayName": MODEL_A_NAME,
            "description": "A tiny model that runs on any CPU.",
            "websiteUrl": "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
            "preprompt": "",
            "parameters": {"max_new_tokens": 256, "stop": ["<|im_end|>"]},
            "promptExamples": [
                {"title": EXAMPLE_TITLE, "prompt": EXAMPLE_PROMPT},
                {"title": "Explain a concept", "prompt": "Explain recursion to a child."},
            ],
            "endpoints": [{"type": "tgi", "url": url_a}],
        },
        {
            "name": MODEL_B_ID,
            "displayName": MODEL_B_NAME,
            "description": "Another model, to switch to in the middle of a conversation.",
            "parameters": {"max_new_tokens": 256},
            "endpoints": [{"type": "tgi", "url": url_b}],
        },
    ]


class LiveServer:
    """daphne on a free port of 127.0.0.1, with its own database; `url` once started."""

    def __init__(self, models: list[dict[str, Any]], *, extra_env: dict[str, str] | None = None):
        self.models = models
        self.extra_env = extra_env or {}
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="chatui-e2e-"))
        self.server: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.base",
                "DATABASE_URL": f"sqlite:///{self.tmp / 'db.sqlite3'}",
                "REDIS_URL": "",
                "SECRET_KEY": "browser-tests-only",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "MODELS": json.dumps(self.models),
                "PUBLIC_APP_NAME": APP_NAME,
                "PUBLIC_APP_DESCRIPTION": "Chat with open models, privately.",
                "PUBLIC_APP_DISCLAIMER_MESSAGE": DISCLAIMER,
                "LLM_SUMMARIZATION": "false",
                "DEBUG": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        # A developer's .env.local must not reach the app under test (an empty value wins).
        env.update(dict.fromkeys(ISOLATED_VARIABLES, ""))
        env.update(self.extra_env)
        return env

    def start(self) -> LiveServer:
        env = self.env()
        migrate(env)
        argv = web_argv(self.port)
        log_path = self.tmp / "daphne.log"
        ready_url = self.url + "/api/models"
        self.server = ServerProcess(argv, env, ready_url, log_path=log_path, name="daphne")
        try:
            self.server.start().wait_ready(STARTUP_TIMEOUT_S)
        except TimeoutError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.server.log() if self.server is not None else ""

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
