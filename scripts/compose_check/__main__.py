"""`python -m scripts.compose_check` (`make compose-check`): see the package docstring.

Every step prints one line; any failure prints the services' last log lines, and everything
the check made (containers, volumes, images, the daemon and its folder) is removed in
`finally`, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.processes import free_port
from scripts.compose_check import hostnet, smoke, standins, wheels
from scripts.compose_check.commands import CheckFailed, require, run, say
from scripts.compose_check.daemon import start_daemon, stop_daemon
from scripts.compose_check.stack import Stack, compose_command

ROOT = Path(__file__).resolve().parents[2]
BUILT = ("web", "inference")


def pinned(package: str) -> str:
    """The version requirements.txt pins for `package`."""
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, flags=re.MULTILINE)
    if not match:
        raise CheckFailed(f"requirements.txt pins no {package}")
    return match[1]


@contextlib.contextmanager
def docker_daemon(docker_host: str | None) -> Iterator[dict[str, str]]:
    """The environment that points docker at a private daemon (started and stopped here), or
    at `docker_host` when given."""
    if docker_host:
        yield {"DOCKER_HOST": docker_host}
        return
    require("dockerd")
    if os.geteuid() != 0:
        raise CheckFailed("a private dockerd needs root: run as root, or pass --docker-host")
    daemon = start_daemon()
    try:
        yield {"DOCKER_HOST": daemon.host}
    finally:
        stop_daemon(daemon)


def _missing_images(env: dict[str, str], names: set[str]) -> set[str]:
    missing = set()
    for name in names:
        try:
            run(["docker", "image", "inspect", name], env=env, timeout=60)
        except CheckFailed:
            missing.add(name)
    return missing


def _derive(work: Path, project: str, torch_links: str | None) -> tuple[Path, dict[str, int]]:
    """Write the host-network compose file under `work`; return it and the services' ports."""
    compose = hostnet.merge(
        hostnet.load_compose(ROOT / "docker-compose.yml"),
        hostnet.load_compose(ROOT / "docker-compose.cpu.yml"),
    )
    env_local = work / "env.local"
    env_local.write_text("# .env.local of `make compose-check`: the defaults, the bundled model\n")
    ports = {name: free_port() for name in hostnet.DEFAULT_PORTS}
    args = (
        {"inference": {"TORCH_FIND_LINKS": torch_links, "TORCH_INDEX_URL": ""}}
        if torch_links
        else {}
    )
    derived = hostnet.derive_host_network(
        compose, project_dir=ROOT, ports=ports, env_local=env_local, build_args=args
    )
    for name in BUILT:
        derived["services"][name]["image"] = f"{project}-{name}"
    path = work / "docker-compose.host.yml"
    path.write_text(hostnet.dump(derived))
    return path, ports


def check(docker_host: str | None) -> None:
    """Every step of the check, in order; raises CheckFailed at the first that fails."""
    require("docker")
    project = f"chatui-check-{os.getpid()}"
    password = secrets.token_urlsafe(24)
    secrets_env = {"INFERENCE_API_KEY": secrets.token_urlsafe(32), "POSTGRES_PASSWORD": password}
    torch_version = pinned("torch")
    wheel_dir = wheels.torch_wheel_dir(wheels.pip_config_list(), torch_version)
    with (
        docker_daemon(docker_host) as docker_env,
        tempfile.TemporaryDirectory(prefix="cc-work-", dir="/tmp") as work_dir,
        contextlib.ExitStack() as stack_exit,
    ):
        env = {**docker_env, **secrets_env, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}
        base = hostnet.load_compose(ROOT / "docker-compose.yml")
        wanted = standins.images_used(base, sorted((ROOT / "docker").glob("*.Dockerfile")))
        made = standins.make_standins(
            env, _missing_images(env, wanted), standins.machine_pip_conf(wheels.pip_config_list())
        )
        if docker_host:
            stack_exit.callback(lambda: run(["docker", "rmi", *made], env=env, timeout=120))
        torch_links = None
        if wheel_dir is not None:
            torch_links = stack_exit.enter_context(wheels.WheelServer(wheel_dir)).url
        path, ports = _derive(Path(work_dir), project, torch_links)
        stack = Stack(command=compose_command(), file=path, project=project, env=env)
        say(f"{' '.join(stack.command)} -p {project}: ports {ports}")
        # the images it built only: on a running daemon, redis and postgres images stay
        built = [f"{project}-{name}" for name in BUILT]
        stack_exit.callback(lambda: stack.docker("image", "rm", "--force", *built, check=False))
        stack_exit.callback(
            lambda: stack.compose("down", "--volumes", "--remove-orphans", timeout=300)
        )
        try:
            run_stack(stack, ports, password, torch_version, with_cpu_wheel=wheel_dir is not None)
        except BaseException:
            say("the services' last log lines:\n" + stack.logs_tail())
            raise


def run_stack(
    stack: Stack, ports: dict[str, int], password: str, torch_version: str, *, with_cpu_wheel: bool
) -> None:
    """Build, start, chat, restart web, read the conversation back."""
    say("building the images")
    stack.build()
    images = {name: f"{stack.project}-{name}" for name in BUILT}  # named so by _derive
    stack.check_image_contents(images)
    if with_cpu_wheel:
        stack.check_cpu_torch(images["inference"], torch_version)
    say("docker compose up")
    stack.compose("up", "-d", timeout=600, echo=True)
    services = ["postgres", "redis", "inference", "web"]
    stack.wait_healthy(services)
    base_url = f"http://127.0.0.1:{ports['web']}"
    say(f"/readyz: {smoke.wait_ready(base_url)}")
    chat = smoke.chat_once(base_url)
    database_url = f"postgresql://chatui:{password}@127.0.0.1:{ports['postgres']}/chatui"
    smoke.check_stored(database_url, chat)
    say("restarting web")
    stack.compose("restart", "web", timeout=300)
    stack.wait_healthy(["web"])
    smoke.check_still_there(base_url, chat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.compose_check", description=__doc__)
    parser.add_argument(
        "--docker-host",
        help="use this running daemon (e.g. unix:///var/run/docker.sock) instead of a private one",
    )
    options = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `finally` blocks remove what was made.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    try:
        check(options.docker_host)
    except CheckFailed as error:
        say(f"FAILED: {error}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; everything made was removed")
        return 130
    say(f"passed in {time.monotonic() - started:.0f} s; everything made was removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
