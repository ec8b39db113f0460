"""docker-compose.yml agrees with the code: commands exist, every variable it sets is read."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
# Where each service of ours reads its environment.
SOURCES = {"web": ("config", "chatui"), "inference": ("inference",)}


def command_words(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def source_text(*packages: str) -> str:
    return "\n".join(
        path.read_text(encoding="utf-8")
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
    )


def test_the_four_services():
    assert set(SERVICES) == {"web", "inference", "redis", "postgres"}
    for name in ("redis", "postgres"):
        assert SERVICES[name]["healthcheck"]["test"]
    assert "redis-cli" in SERVICES["redis"]["healthcheck"]["test"]
    assert "pg_isready" in SERVICES["postgres"]["healthcheck"]["test"]


@pytest.mark.parametrize("service", sorted(SOURCES))
def test_every_variable_set_is_read_by_the_code(service):
    text = source_text(*SOURCES[service])
    for name in SERVICES[service]["environment"]:
        assert re.search(rf"[\"']{re.escape(name)}[\"']", text), f"{service}: {name} is never read"


@pytest.mark.parametrize("service", sorted(SOURCES))
def test_dockerfiles_exist(service):
    build = SERVICES[service]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_web_runs_daphne_on_uvloop_on_the_asgi_app_after_migrations():
    words = command_words("web")
    assert words[:2] == ["sh", "-c"]
    script = words[2]
    assert "manage.py migrate --noinput" in script
    assert "python -m config.serve -b 0.0.0.0 -p 8000 config.asgi:application" in script
    module, attribute = "config.asgi", "application"
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}; assert callable({module}.{attribute})"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    web = SERVICES["web"]
    assert web["environment"]["INFERENCE_URL"] == "http://inference:8080"
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    assert web["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert web["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert web["depends_on"]["redis"]["condition"] == "service_healthy"
    env_local = next(v for v in web["volumes"] if isinstance(v, dict))
    assert (env_local["target"], env_local["read_only"]) == ("/app/.env.local", True)


def test_inference_command_parses_and_has_a_gpu_and_a_model_volume():
    words = command_words("inference")
    assert words[:3] == ["python", "-m", "inference"]
    assert importlib.util.find_spec("inference.__main__") is not None
    from inference.cli import build_parser

    args = build_parser({}).parse_args(words[3:])
    assert (args.hostname, args.port) == ("0.0.0.0", 8080)
    inference = SERVICES["inference"]
    device = inference["deploy"]["resources"]["reservations"]["devices"][0]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    assert any(v.endswith(":/app/var/models") for v in inference["volumes"])
    assert "models" in COMPOSE["volumes"]
    assert "/health" in " ".join(inference["healthcheck"]["test"])
