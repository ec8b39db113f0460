"""Running docker, docker-compose and friends: every call has a timeout and a readable failure."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

STARTED = time.monotonic()
TAIL_LINES = 40


class CheckFailed(RuntimeError):
    """A step of the check failed; the message says which and why."""


def say(message: str) -> None:
    """One progress line, with the time since the check started."""
    print(f"[compose-check {time.monotonic() - STARTED:5.0f} s] {message}", flush=True)


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    echo: bool = False,
) -> str:
    """Run `argv` and return its output; raise CheckFailed with the output's tail on failure
    or when it runs past `timeout` seconds (it is killed then). With `echo`, each line is
    printed as it comes (builds are long)."""
    process = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        text=True,
        errors="replace",
    )
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        process.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    lines: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            tail.append(line.rstrip())
            if echo:
                print(f"    {line.rstrip()}", flush=True)
        returncode = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    name = " ".join(argv[:3])
    if expired.is_set():
        raise CheckFailed(f"{name}: killed after {timeout:.0f} s:\n" + "\n".join(tail))
    if returncode != 0:
        raise CheckFailed(f"{name}: exit status {returncode}:\n" + "\n".join(tail))
    return "".join(lines)


def require(*programs: str) -> None:
    """Stop early, naming the packages to install, when a program is missing."""
    packages = {"dockerd": "docker.io", "docker": "docker.io", "docker-compose": "docker-compose"}
    missing = [name for name in programs if shutil.which(name) is None]
    if missing:
        hint = " ".join(sorted({packages.get(name, name) for name in missing}))
        raise CheckFailed(f"missing {', '.join(missing)}: apt-get install {hint}")
