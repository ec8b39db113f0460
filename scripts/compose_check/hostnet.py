"""The host-network variant of docker-compose.yml (plus the CPU override) for the check.

A private daemon started with `--bridge=none` has no container network, so every service runs
in the host's network, listening on the loopback only: service names resolve to 127.0.0.1
through `extra_hosts`, and each service moves to a free port so that the machine's own
Postgres and Redis (or anything else on 5432, 6379, 8000 or 8080) are never touched. The
result is also valid for Compose v1, which rejects `bind.create_host_path`. Pure functions
on the parsed YAML: no Docker needed to test.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

# The port each service listens on in docker-compose.yml.
DEFAULT_PORTS = {"web": 8000, "inference": 8080, "redis": 6379, "postgres": 5432}
LOOPBACK = "127.0.0.1"
ENV_LOCAL_TARGET = "/app/.env.local"


class Reset:
    """Compose's `!reset` tag (v2.24+): the key it marks is removed from the merged file."""


class _ComposeLoader(yaml.SafeLoader):
    """A safe loader that knows Compose's `!reset` tag."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())


def load_compose(path: Path) -> dict[str, Any]:
    """A compose file as a dict; `!reset` values become `Reset()`."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_ComposeLoader)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Compose's merge of an override file, for the keys our files use: mappings merge
    recursively, other values replace, and `!reset` removes the key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Reset):
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _moved(text: str, ports: dict[str, tuple[int, int]]) -> str:
    """`text` with each `host:old` address (a service name or the loopback) at its new port."""
    for service, (old, new) in ports.items():
        for host in (service, "localhost", LOOPBACK):
            text = re.sub(rf"(?<![\w.-]){re.escape(host)}:{old}\b", f"{host}:{new}", text)
    return text


def _own_port(words: Any, old: int, new: int) -> Any:
    """A command or health check (string or list) with the service's own port replaced."""
    if isinstance(words, str):
        return re.sub(rf"\b{old}\b", str(new), words)
    return [re.sub(rf"\b{old}\b", str(new), str(word)) for word in words]


def _on_loopback(words: Any) -> Any:
    """A command (string or list) that binds 0.0.0.0, bound to the loopback instead."""
    if isinstance(words, str):
        return words.replace("0.0.0.0", LOOPBACK)
    return [str(word).replace("0.0.0.0", LOOPBACK) for word in words]


def _listen_on(name: str, service: dict[str, Any], old: int, new: int) -> None:
    """Make service `name` listen on the loopback only (the host's network is shared), at
    port `new` instead of `old`, the way its image allows."""
    if name == "postgres":
        # PGPORT is read by postgres itself and by pg_isready; `-c` settings follow the
        # entrypoint's own, so they win
        service.setdefault("environment", {})["PGPORT"] = str(new)
        service["command"] = ["postgres", "-c", f"listen_addresses={LOOPBACK}"]
    elif name == "redis":
        service["command"] = ["redis-server", "--bind", LOOPBACK, "--port", str(new)]
        test = list(service["healthcheck"]["test"])
        at = test.index("redis-cli") + 1
        service["healthcheck"]["test"] = [*test[:at], "-p", str(new), *test[at:]]
    else:
        command = _own_port(service["command"], old, new)
        service["command"] = _on_loopback(command)
        if "healthcheck" in service:
            service["healthcheck"]["test"] = _own_port(service["healthcheck"]["test"], old, new)


def _volumes(volumes: list[Any], env_local: Path) -> list[Any]:
    """The service's volumes with `.env.local` bound from `env_local`, in v1's syntax."""
    result = []
    for volume in volumes:
        if isinstance(volume, dict) and volume.get("target") == ENV_LOCAL_TARGET:
            volume = {**volume, "source": str(env_local)}
            volume.pop("bind", None)
        result.append(volume)
    return result


def derive_host_network(
    compose: dict[str, Any],
    *,
    project_dir: Path,
    ports: dict[str, int],
    env_local: Path,
    build_args: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The compose file with every service on the host network at the ports in `ports`.

    `project_dir` makes build contexts absolute (the derived file lives elsewhere), `env_local`
    replaces the project's `.env.local` mount, and `build_args` adds build arguments per service.
    GPU reservations are dropped: the check runs where there is no NVIDIA runtime.
    """
    derived = copy.deepcopy(compose)
    services: dict[str, dict[str, Any]] = derived["services"]
    moves = {name: (DEFAULT_PORTS[name], port) for name, port in ports.items()}
    hosts = [f"{name}:{LOOPBACK}" for name in sorted(services)]
    for name, service in services.items():
        service["network_mode"] = "host"
        service["extra_hosts"] = list(hosts)
        for key in ("ports", "networks", "deploy"):
            service.pop(key, None)
        if "build" in service:
            build = service["build"]
            build["context"] = str((project_dir / build.get("context", ".")).resolve())
            build["network"] = "host"
            args = {**build.get("args", {}), **(build_args or {}).get(name, {})}
            if args:
                build["args"] = args
        environment = service.get("environment", {})
        for key, value in environment.items():
            environment[key] = _moved(str(value), moves)
        if "volumes" in service:
            service["volumes"] = _volumes(service["volumes"], env_local)
        if name in moves:
            _listen_on(name, service, *moves[name])
    return derived


def dump(compose: dict[str, Any]) -> str:
    """YAML text of a derived compose file."""
    return yaml.safe_dump(compose, sort_keys=False)
