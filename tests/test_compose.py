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


def _imported_top_modules(*packages: str) -> set[str]:
    """Top-level modules `packages` import: their import statements, plus (for the web app)
    the Django apps and middleware the settings name as strings."""
    import ast

    names: set[str] = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    if "config" in packages:
        from django.conf import settings

        for dotted in [*settings.INSTALLED_APPS, *settings.MIDDLEWARE]:
            names.add(dotted.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"chatui", "config", "inference"}


def _with_dependencies(distributions: set[str]) -> set[str]:
    """The installed distributions ``distributions`` pull in, themselves included."""
    from importlib import metadata

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    seen: set[str] = set()
    todo = [norm(d) for d in distributions]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" not in requirement:
                todo.append(norm(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0]))
    return seen


def _pip_installed(dockerfile: str) -> set[str]:
    """The packages a Dockerfile's `pip install -c requirements.txt ...` line names."""
    text = (ROOT / "docker" / dockerfile).read_text()
    install = re.search(r"pip install -c requirements.txt((?:[^\n]*\\\n)*[^\n]*)", text)
    assert install, f"{dockerfile} installs its packages with one pip install line"
    words = install.group(1).replace("\\", " ").replace('"', "").split()
    return {re.sub(r"\[.*", "", w) for w in words if w[0] not in "$-&" and "}" not in w}


@pytest.mark.parametrize(
    ("dockerfile", "packages"),
    [("web.Dockerfile", ("chatui", "config")), ("inference.Dockerfile", ("inference",))],
)
def test_each_image_installs_every_package_its_code_imports(dockerfile, packages):
    from importlib import metadata

    installed = _with_dependencies(_pip_installed(dockerfile))
    owners = metadata.packages_distributions()
    missing = {
        re.sub(r"[-_.]+", "-", owners.get(module, [module])[0]).lower()
        for module in _imported_top_modules(*packages)
    } - installed
    assert not missing, f"{dockerfile} lacks {sorted(missing)}"


def test_each_image_carries_only_its_own_side():
    web = (ROOT / "docker" / "web.Dockerfile.dockerignore").read_text().split()
    inference = (ROOT / "docker" / "inference.Dockerfile.dockerignore").read_text().split()
    assert web[0] == inference[0] == "**"  # everything is left out unless named
    assert "!inference/**" not in web and "!chatui/**" in web
    assert not {"!chatui/**", "!config/**", "!manage.py"} & set(inference)
    assert {"torch", "transformers"}.isdisjoint(_pip_installed("web.Dockerfile"))
    assert {"Django", "channels", "daphne"}.isdisjoint(_pip_installed("inference.Dockerfile"))


def test_one_inference_key_for_both_services_and_no_open_inference_port():
    web, inference = SERVICES["web"]["environment"], SERVICES["inference"]["environment"]
    assert web["INFERENCE_API_KEY"] == inference["API_KEY"]
    assert web["INFERENCE_API_KEY"].startswith("${INFERENCE_API_KEY:?")  # unset: compose stops
    assert "ports" not in SERVICES["inference"]


def test_secrets_come_from_env_and_every_service_has_a_health_check():
    web, postgres = SERVICES["web"]["environment"], SERVICES["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert f":{postgres['POSTGRES_PASSWORD']}@postgres:5432/" in web["DATABASE_URL"]
    for name, service in SERVICES.items():
        assert service["healthcheck"]["test"], name
    assert "/healthz" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in SERVICES["postgres"]["volumes"])
    assert "web-data:/app/var" in SERVICES["web"]["volumes"]


def test_the_cpu_override_drops_the_gpu_and_builds_torch_for_the_cpu():
    from scripts.compose_check.hostnet import Reset, load_compose, merge

    override = load_compose(ROOT / "docker-compose.cpu.yml")
    assert set(override["services"]) == {"inference"}
    assert isinstance(override["services"]["inference"]["deploy"], Reset)
    merged = merge(load_compose(ROOT / "docker-compose.yml"), override)["services"]["inference"]
    assert "deploy" not in merged
    assert merged["build"]["args"]["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert merged["command"] == SERVICES["inference"]["command"]
    dockerfile = (ROOT / "docker" / "inference.Dockerfile").read_text()
    for name in ("TORCH_INDEX_URL", "TORCH_FIND_LINKS"):
        assert f'ARG {name}=""' in dockerfile and f"${{{name}:+" in dockerfile
