"""A private Docker daemon under a temporary folder, stopped by its PID and removed after.

`dockerd --bridge=none --iptables=false --ip-masq=false` changes nothing in the host's
network: containers run with `network_mode: host`. Its data root, exec root, PID file and
socket all live under one folder, so nothing of the machine's own Docker (if any) is touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.compose_check.commands import CheckFailed, run, say

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


@dataclass
class PrivateDaemon:
    """A started dockerd: its folder, process and socket URL (for DOCKER_HOST)."""

    root: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"


def start_daemon() -> PrivateDaemon:
    """Start dockerd under a new folder in /tmp (short: socket paths are limited to 108
    bytes) and wait until it answers."""
    root = Path(tempfile.mkdtemp(prefix="cc-", dir="/tmp"))
    log = (root / "dockerd.log").open("wb")
    argv = [
        "dockerd",
        "--bridge=none",
        "--iptables=false",
        "--ip-masq=false",
        "--storage-driver=overlay2",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
    ]
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    daemon = PrivateDaemon(root=root, process=process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            run(["docker", "version"], env={"DOCKER_HOST": daemon.host}, timeout=10)
            say(f"dockerd {process.pid} answers on {daemon.host}")
            return daemon
        except CheckFailed:
            time.sleep(1)
    log_tail = (root / "dockerd.log").read_text(errors="replace")[-3000:]
    stop_daemon(daemon)
    raise CheckFailed(f"dockerd did not start:\n{log_tail}")


def _mounts_under(root: Path) -> list[str]:
    """Mount points below `root` (overlay layers, the exec root), deepest first."""
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    prefix = f"{root}/"
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def stop_daemon(daemon: PrivateDaemon) -> None:
    """SIGTERM dockerd by its PID (it stops its containers), SIGKILL if it lingers, unmount
    whatever it left mounted, and remove its folder."""
    process = daemon.process
    if process.poll() is None:
        say(f"stopping dockerd {process.pid}")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for point in _mounts_under(daemon.root):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    if _mounts_under(daemon.root):
        say(f"left {daemon.root} in place: something is still mounted under it")
        return
    shutil.rmtree(daemon.root, ignore_errors=True)
    if os.path.exists(daemon.root):
        say(f"could not remove all of {daemon.root}")
