"""The compose project under test: compose commands, container health, image contents."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.compose_check.commands import CheckFailed, run, say

# a first start on a busy 2-core machine: model conversion plus the kernels compiled (minutes)
HEALTH_TIMEOUT_S = 1800.0
BUILD_TIMEOUT_S = 3600.0
# What each built image must hold, and what it must not (the other side's code).
IMAGE_CONTENTS = {
    "web": (["/app/manage.py", "/app/chatui", "/app/config", "/app/static"], ["/app/inference"]),
    "inference": (["/app/inference"], ["/app/chatui", "/app/config", "/app/manage.py"]),
}


def compose_command() -> list[str]:
    """Compose v2 (`docker compose`) when installed, else v1 (`docker-compose`)."""
    try:
        run(["docker", "compose", "version"], timeout=30)
        return ["docker", "compose"]
    except (CheckFailed, FileNotFoundError):
        if shutil.which("docker-compose") is None:
            raise CheckFailed(
                "neither `docker compose` nor `docker-compose` is installed"
            ) from None
        return ["docker-compose"]


@dataclass
class Stack:
    """One compose project in one daemon: `compose(...)` runs a subcommand on it."""

    command: list[str]
    file: Path
    project: str
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = 300.0, echo: bool = False) -> str:
        argv = [*self.command, "-p", self.project, "-f", str(self.file), *args]
        return run(argv, env=self.env, timeout=timeout, echo=echo)

    def docker(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        """`docker ARGS` on the stack's daemon; with `check=False` a failure is only said."""
        try:
            return run(["docker", *args], env=self.env, timeout=timeout)
        except CheckFailed as error:
            if check:
                raise
            say(f"ignored: {error}")
            return ""

    def build(self) -> None:
        self.compose("build", timeout=BUILD_TIMEOUT_S, echo=True)

    def container(self, service: str) -> str:
        container_id = self.compose("ps", "-q", service).strip()
        if not container_id:
            raise CheckFailed(f"no container for {service}")
        return container_id.splitlines()[-1]

    def wait_healthy(self, services: list[str]) -> None:
        """Wait until every service's container reports `healthy`; fail fast on one that
        stopped. `unhealthy` is waited out: a first start on a busy CPU (the model converted,
        the kernels compiled) may outlast the start period, and health comes back after."""
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        pending = list(services)
        while pending:
            for service in list(pending):
                state = json.loads(
                    self.docker("inspect", "-f", "{{json .State}}", self.container(service))
                )
                health = (state.get("Health") or {}).get("Status")
                if health == "healthy":
                    say(f"{service} is healthy")
                    pending.remove(service)
                elif state["Status"] in ("exited", "dead", "restarting"):
                    raise CheckFailed(f"{service} is {state['Status']}")
            if pending and time.monotonic() > deadline:
                raise CheckFailed(f"not healthy after {HEALTH_TIMEOUT_S:.0f} s: {pending}")
            if pending:
                time.sleep(3)

    def check_image_contents(self, images: dict[str, str]) -> None:
        """Each image holds its own code and not the other side's."""
        for service, (present, absent) in IMAGE_CONTENTS.items():
            script = " && ".join(
                [*(f"test -e {p}" for p in present), *(f"! test -e {p}" for p in absent)]
            )
            self.docker(
                "run", "--rm", "--network=host", "--entrypoint", "sh", images[service], "-c", script
            )
            say(f"{service} image: has {', '.join(present)}; lacks {', '.join(absent)}")

    def check_cpu_torch(self, image: str, version: str) -> None:
        """The inference image's torch is the pinned version's CPU build."""
        code = "import torch; print(torch.__version__, torch.version.cuda)"
        found = self.docker("run", "--rm", "--network=host", image, "python", "-c", code).split()
        if found != [f"{version}+cpu", "None"]:
            raise CheckFailed(f"the inference image has torch {found}, not {version}+cpu")
        say(f"inference image: torch {found[0]}, no CUDA")

    def logs_tail(self) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail=60", timeout=60)
        except CheckFailed as error:
            return str(error)
