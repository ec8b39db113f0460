"""The pure parts of `make compose-check`: the host-network compose file it derives, the
stand-ins it makes, and the pip settings it carries into images (no Docker needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.compose_check import commands, hostnet, standins, wheels

ROOT = Path(__file__).resolve().parents[2]
PORTS = {"web": 18000, "inference": 18080, "redis": 16379, "postgres": 15432}


@pytest.fixture(scope="module")
def derived(tmp_path_factory) -> dict:
    compose = hostnet.merge(
        hostnet.load_compose(ROOT / "docker-compose.yml"),
        hostnet.load_compose(ROOT / "docker-compose.cpu.yml"),
    )
    env_local = tmp_path_factory.mktemp("check") / "env.local"
    env_local.write_text("")
    return hostnet.derive_host_network(
        compose,
        project_dir=ROOT,
        ports=PORTS,
        env_local=env_local,
        build_args={"inference": {"TORCH_FIND_LINKS": "http://127.0.0.1:9/"}},
    )


def test_every_service_on_the_host_network_with_names_on_the_loopback(derived):
    services = derived["services"]
    for name, service in services.items():
        assert service["network_mode"] == "host", name
        assert "ports" not in service and "deploy" not in service, name
        assert sorted(service["extra_hosts"]) == sorted(f"{s}:127.0.0.1" for s in services)
    for name in ("web", "inference"):
        build = services[name]["build"]
        assert build["network"] == "host" and Path(build["context"]) == ROOT
    assert services["inference"]["build"]["args"]["TORCH_FIND_LINKS"] == "http://127.0.0.1:9/"


def test_each_service_moves_to_its_port_and_the_others_follow(derived):
    services = derived["services"]
    web = services["web"]["environment"]
    assert web["DATABASE_URL"].endswith("@postgres:15432/chatui")
    assert web["REDIS_URL"] == "redis://redis:16379/0"
    assert web["INFERENCE_URL"] == "http://inference:18080"
    assert web["CSRF_TRUSTED_ORIGINS"] == "http://localhost:18000,http://127.0.0.1:18000"
    assert "-p 18000 config.asgi" in services["web"]["command"]
    assert "127.0.0.1:18000/healthz" in services["web"]["healthcheck"]["test"][-1]
    assert services["inference"]["command"].endswith("--port 18080")
    assert "127.0.0.1:18080/health" in services["inference"]["healthcheck"]["test"][-1]
    assert services["redis"]["command"] == [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        "16379",
    ]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "-p", "16379", "ping"]
    assert services["postgres"]["environment"]["PGPORT"] == "15432"
    assert services["postgres"]["command"] == ["postgres", "-c", "listen_addresses=127.0.0.1"]
    assert "-b 127.0.0.1 -p 18000" in services["web"]["command"]
    assert "--hostname 127.0.0.1 --port 18080" in services["inference"]["command"]
    assert "0.0.0.0" not in hostnet.dump(derived)  # nothing listens beyond the loopback
    assert not re.findall(r"\b(?:5432|6379|8000|8080)\b", hostnet.dump(derived))


def test_env_local_comes_from_the_check_in_compose_v1_syntax(derived):
    mount = next(v for v in derived["services"]["web"]["volumes"] if isinstance(v, dict))
    assert mount["target"] == "/app/.env.local" and mount["read_only"] is True
    assert Path(mount["source"]).name == "env.local" and "bind" not in mount
    assert "create_host_path" not in hostnet.dump(derived)
    assert "&id" not in hostnet.dump(derived)  # no YAML anchors: every service stands alone


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (v1) absent")
def test_compose_v1_accepts_the_derived_file(derived, tmp_path):
    path = tmp_path / "docker-compose.host.yml"
    path.write_text(hostnet.dump(derived))
    result = subprocess.run(
        ["docker-compose", "-f", str(path), "config", "-q"],
        env={"PATH": "/usr/bin:/bin", "INFERENCE_API_KEY": "k", "POSTGRES_PASSWORD": "p"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_base_image_has_a_stand_in_with_a_dockerfile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    used = standins.images_used(compose, sorted((ROOT / "docker").glob("*.Dockerfile")))
    assert used == set(standins.STANDINS)
    for dockerfile in standins.STANDINS.values():
        text = (standins.STANDINS_DIR / dockerfile).read_text()
        assert text.splitlines()[-1].startswith(("CMD", "ENV", "ENTRYPOINT"))
        assert f"FROM {standins.BASE_TAG}" in text


def test_images_get_the_index_settings_but_none_of_the_machines_paths():
    listing = "\n".join(
        [
            ":env:.find-links='/opt/wheels'",
            "global.extra-index-url='file:///opt/pypi/simple https://mirror.example/simple'",
            "global.constraint='/etc/xdg/pip/constraints.txt'",
            "global.timeout='180'",
        ]
    )
    conf = standins.machine_pip_conf(listing)
    assert "extra-index-url = https://mirror.example/simple" in conf
    assert "timeout = 180" in conf
    assert "/opt" not in conf and "file:" not in conf and "constraint" not in conf
    assert "cert = /etc/ssl/certs/machine-ca-certificates.crt" in conf


def test_the_cpu_torch_wheel_is_found_where_pip_finds_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    listing = f"global.find-links='/nonexistent {tmp_path}'"
    assert wheels.find_links_dirs(listing) == [Path("/nonexistent"), tmp_path]
    assert wheels.torch_wheel_dir(listing, "2.13.0") == tmp_path
    assert wheels.torch_wheel_dir(listing, "2.14.0") is None


def test_a_failing_or_hanging_command_is_a_readable_failure():
    assert commands.run(["sh", "-c", "echo ok"], timeout=30) == "ok\n"
    with pytest.raises(commands.CheckFailed, match=r"exit status 3:\nlast words"):
        commands.run(["sh", "-c", "echo last words; exit 3"], timeout=30)
    with pytest.raises(commands.CheckFailed, match=r"sleep 30: killed after \d+ s"):
        commands.run(["sleep", "30"], timeout=0.5)
    with pytest.raises(commands.CheckFailed, match=r"apt-get install no-such-program"):
        commands.require("sh", "no-such-program")
