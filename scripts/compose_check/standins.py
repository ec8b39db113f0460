"""Stand-ins for the registry's base images, made on this machine (no registry is reachable).

A Debian bookworm root made by `debootstrap --variant=minbase` from the configured mirror is
imported as `chatui-standin/debian:bookworm`; `docker/standins/*.Dockerfile` build on it and
are tagged with the names the compose file and Dockerfiles use. The debootstrap tarball and
the built stand-ins are cached under var/compose-check/ (keyed by the stand-ins' sources), so
only the first run on a machine pays for them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from scripts.compose_check.commands import CheckFailed, require, run, say

ROOT = Path(__file__).resolve().parents[2]
STANDINS_DIR = ROOT / "docker" / "standins"
CACHE_DIR = ROOT / "var" / "compose-check"
BASE_TAG = "chatui-standin/debian:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
MACHINE_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The image each stand-in replaces -> its Dockerfile under docker/standins/.
STANDINS = {
    "python:3.11-slim": "python.Dockerfile",
    "redis:7-alpine": "redis.Dockerfile",
    "postgres:16-alpine": "postgres.Dockerfile",
}
# pip settings worth carrying into images: where the index is and how to reach it (local
# paths, file:// indexes and constraint files of this machine mean nothing inside a build).
PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout", "proxy")


def images_used(compose: dict, dockerfiles: list[Path]) -> set[str]:
    """Every registry image the stack starts from: `image:` keys and Dockerfile FROM lines."""
    names = {service["image"] for service in compose["services"].values() if "image" in service}
    for dockerfile in dockerfiles:
        text = dockerfile.read_text(encoding="utf-8")
        names |= set(re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE))
    return names


def machine_pip_conf(pip_config_list: str) -> str:
    """A pip.conf for images from `pip config list` output: the index settings only."""
    lines = ["[global]", "cert = /etc/ssl/certs/machine-ca-certificates.crt"]
    for entry in pip_config_list.splitlines():
        match = re.fullmatch(r"[^.]*\.([\w-]+)='(.*)'", entry.strip())
        if not match or match[1] not in PIP_KEYS:
            continue
        values = [v for v in match[2].split() if not v.startswith(("file:", "/"))]
        if values:
            lines.append(f"{match[1]} = {' '.join(values)}")
    return "\n".join(lines) + "\n"


def _sources_key(pip_conf: str) -> str:
    """A digest of what the stand-ins are made from, naming their cache file."""
    digest = hashlib.sha256(pip_conf.encode())
    for path in sorted(STANDINS_DIR.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(MACHINE_CA_BUNDLE.read_bytes())
    return digest.hexdigest()[:16]


def _debootstrap_tarball() -> Path:
    """The minbase bookworm root as a tarball, made once (about a minute)."""
    tarball = CACHE_DIR / "bookworm-minbase.tar"
    if tarball.is_file():
        return tarball
    require("debootstrap")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cc-root-", dir="/tmp") as work:
        rootfs = Path(work) / "rootfs"
        say(f"debootstrap --variant=minbase bookworm from {DEBIAN_MIRROR}")
        run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR],
            timeout=900,
        )
        partial = tarball.with_suffix(".part")
        run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300)
        partial.rename(tarball)
    return tarball


def _build_context(dockerfile: str, pip_conf: str, work: Path) -> Path:
    """A build folder: the stand-in sources plus the machine's CA bundle and pip.conf."""
    context = work / dockerfile.removesuffix(".Dockerfile")
    shutil.copytree(STANDINS_DIR, context)
    shutil.copy(MACHINE_CA_BUNDLE, context / "ca-certificates.crt")
    (context / "pip.conf").write_text(pip_conf)
    return context


def _import_base(docker_env: dict[str, str]) -> None:
    """`docker import` the debootstrap root as BASE_TAG."""
    with _debootstrap_tarball().open("rb") as tar:
        say(f"docker import -> {BASE_TAG}")
        imported = subprocess.run(
            ["docker", "import", "-", BASE_TAG],
            stdin=tar,
            env={**os.environ, **docker_env},
            timeout=600,
            capture_output=True,
            text=True,
            check=False,
        )
    if imported.returncode != 0:
        raise CheckFailed(f"docker import {BASE_TAG}: {imported.stderr.strip()}")


def make_standins(docker_env: dict[str, str], wanted: set[str], pip_conf: str) -> list[str]:
    """Load or build the stand-ins for `wanted` in the daemon at `docker_env`; return the tags
    made. Refuses an image it has no stand-in for. Only the full set is cached and loaded, so
    a running daemon's own images are never replaced."""
    unknown = wanted - set(STANDINS)
    if unknown:
        raise CheckFailed(f"no stand-in for {sorted(unknown)}: add one under docker/standins/")
    if not wanted:
        return []
    is_full_set = wanted == set(STANDINS)
    cache = CACHE_DIR / f"standins-{_sources_key(pip_conf)}.tar"
    if is_full_set and cache.is_file():
        say(f"loading the stand-ins from {cache.relative_to(ROOT)}")
        run(["docker", "load", "-i", str(cache)], env=docker_env, timeout=600)
        return sorted(STANDINS)
    _import_base(docker_env)
    with tempfile.TemporaryDirectory(prefix="cc-ctx-", dir="/tmp") as work:
        for tag in sorted(wanted):
            dockerfile = STANDINS[tag]
            say(f"building the stand-in for {tag}")
            context = _build_context(dockerfile, pip_conf, Path(work))
            run(
                [
                    "docker",
                    "build",
                    "--network=host",
                    "-f",
                    str(context / dockerfile),
                    "-t",
                    tag,
                    str(context),
                ],
                env={**docker_env, "DOCKER_BUILDKIT": "0"},
                timeout=1200,
                echo=True,
            )
    if not is_full_set:
        return [*sorted(wanted), BASE_TAG]  # the base last: the stand-ins are its children
    for stale in CACHE_DIR.glob("standins-*.tar"):
        stale.unlink()
    partial = cache.with_suffix(".part")
    run(["docker", "save", "-o", str(partial), *STANDINS], env=docker_env, timeout=600)
    partial.rename(cache)
    return [*sorted(STANDINS), BASE_TAG]
